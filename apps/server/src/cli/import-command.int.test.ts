import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningServer, startServer } from "../server.ts";
import { mainScript, nodeBinary, repoRoot } from "../testing/child-server.ts";
import { testConfig, testDatabaseKind } from "../testing/test-app.ts";

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function aforo(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(nodeBinary(), [mainScript, ...args], {
      cwd: repoRoot,
      env: { ...process.env, DATABASE_URL: "", AFORO_API_KEY: "", ...env },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

// The CLI uploads to a real server on the embedded database: only the PGlite project.
describe.skipIf(testDatabaseKind() === "postgres")("aforo import", () => {
  let folder = "";
  let server: RunningServer;
  let url = "";
  let key = "";
  let tenant = "";
  let customerId = "";

  async function api(method: string, pathname: string, body: unknown) {
    const response = await fetch(`${url}${pathname}`, {
      method,
      headers: { authorization: `Bearer ${key}`, "x-tenant-id": tenant, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    expect(response.status, await response.clone().text()).toBe(201);
    return (await response.json()) as { id: string };
  }

  async function file(name: string, content: string): Promise<string> {
    const location = path.join(folder, name);
    await writeFile(location, content);
    return location;
  }

  beforeAll(async () => {
    folder = await mkdtemp(path.join(tmpdir(), "aforo-import-"));
    server = await startServer(
      testConfig({ port: 0, host: "127.0.0.1", dataDir: path.join(folder, "data"), databaseUrl: undefined }),
    );
    const address = server.app.server.address();
    url = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
    const sandbox = server.firstStart?.sandbox;
    if (!sandbox) throw new Error("the server did not bootstrap a sandbox tenant");
    key = sandbox.testKey;
    tenant = sandbox.slug;
    await api("POST", "/v1/billable_units", {
      key: "api_calls",
      name: "API calls",
      unit_label: "calls",
      aggregation: "COUNT",
    });
    customerId = (
      await api("POST", "/v1/customers", { name: "Acme", email: "a@example.com", currency: "USD" })
    ).id;
  });

  afterAll(async () => {
    await server?.stop();
    await rm(folder, { recursive: true, force: true });
  });

  it("uploads an NDJSON file, waits for the job and prints it with --json, exit 0 when COMPLETED", async () => {
    const rows = Array.from({ length: 3 }, (_, index) =>
      JSON.stringify({ customer_id: customerId, metric_id: "api_calls", idempotency_key: `cli-${index}` }),
    );
    const location = await file("usage.ndjson", `${rows.join("\n")}\n`);
    const run = await aforo(["import", location, "--tenant", tenant, "--key", key, "--url", url, "--json"]);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({
      id: expect.stringMatching(/^imp_/),
      object: "import_job",
      status: "COMPLETED",
      format: "ndjson",
      filename: "usage.ndjson",
      total_rows: 3,
      processed_rows: 3,
      accepted_rows: 3,
      duplicate_rows: 0,
      failed_rows: 0,
    });
  });

  it("prints a summary with the first errors and exits 1 for a PARTIAL import (key from AFORO_API_KEY)", async () => {
    const location = await file(
      "usage.csv",
      `customer_id,metric_id,idempotency_key\n${customerId},api_calls,cli-0\n${customerId},api_calls,cli-csv\ncus_nope,api_calls,\n`,
    );
    const run = await aforo(["import", location, "--tenant", tenant, "--url", url], { AFORO_API_KEY: key });
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/^Import imp_\w+ \(usage\.csv\): PARTIAL$/m);
    expect(run.stdout).toMatch(/^ {2}accepted: {3}1$/m);
    expect(run.stdout).toMatch(/^ {2}duplicates: 1$/m);
    expect(run.stdout).toMatch(/^ {2}failed: {5}1$/m);
    expect(run.stdout).toContain("row 4  unknown-customer  No customer 'cus_nope' exists in this tenant.");
  });

  it("refuses a file whose format it cannot tell (exit 2) and reports a server it cannot reach (exit 1)", async () => {
    const unknown = await file("usage.txt", "{}\n");
    const base = ["import", unknown, "--tenant", tenant];
    const [noFormat, noKey, unreachable, badKey] = await Promise.all([
      aforo([...base, "--key", key, "--url", url]),
      aforo([...base, "--url", url, "--format", "ndjson"]),
      aforo([...base, "--key", key, "--format", "ndjson", "--url", "http://127.0.0.1:9", "--json"]),
      aforo([...base, "--key", "sk_test_nope", "--format", "ndjson", "--url", url]),
    ]);
    expect(noFormat.code).toBe(2);
    expect(noFormat.stderr).toContain("--format");
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toContain("AFORO_API_KEY");
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toContain("cannot reach the Aforo server");
    expect(badKey.code).toBe(1);
    expect(badKey.stderr).toMatch(/^error: /);
  });
});
