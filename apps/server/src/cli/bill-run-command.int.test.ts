import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const repoRoot = fileURLToPath(new URL("../../../../", import.meta.url));
const mainScript = path.join(repoRoot, "apps/server/src/cli/main.ts");

/** A Node that strips types (>= 22.18); vitest may run on an older one, so fall back to the pinned one. */
function nodeBinary(): string {
  const [major = 0, minor = 0] = process.versions.node.split(".").map(Number);
  if (major > 22 || (major === 22 && minor >= 18)) return process.execPath;
  return path.join(repoRoot, "node_modules", "node", "bin", "node");
}

function aforo(
  args: string[],
  dataDir: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(nodeBinary(), [mainScript, ...args], {
      cwd: repoRoot,
      env: { ...process.env, DATABASE_URL: "", AFORO_DATA_DIR: dataDir },
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

// The CLI runs the real binary against a fresh embedded database folder: only the PGlite project.
describe.skipIf(process.env.AFORO_TEST_DATABASE === "postgres")("aforo bill-run", () => {
  let dataDir = "";

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), "aforo-bill-run-"));
  });

  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it("runs a bill run for a tenant and mode and prints it as JSON with its duration and totals", async () => {
    const created = await aforo(["tenants", "create", "--name", "Acme", "--slug", "acme", "--json"], dataDir);
    expect(created.code, created.stderr).toBe(0);
    const run = await aforo(
      ["bill-run", "--tenant", "acme", "--mode", "test", "--as-of", "2026-01-01T00:00:00Z", "--json"],
      dataDir,
    );
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    const body = JSON.parse(run.stdout);
    expect(body).toMatchObject({
      object: "bill_run",
      status: "COMPLETED",
      as_of: "2026-01-01T00:00:00.000Z",
      subscriptions_processed: 0,
      invoices_created: 0,
      invoice_ids: [],
      totals: [],
    });
    expect(body.id).toMatch(/^br_/);
    expect(typeof body.duration_ms).toBe("number");
  });

  it("prints a summary table without --json, and refuses an unknown tenant", async () => {
    const run = await aforo(["bill-run", "--tenant", "acme", "--mode", "live"], dataDir);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/status:\s+COMPLETED/);
    expect(run.stdout).toMatch(/invoices created:\s+0/);
    const unknown = await aforo(["bill-run", "--tenant", "nope", "--mode", "live"], dataDir);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain("nope");
  });
});
