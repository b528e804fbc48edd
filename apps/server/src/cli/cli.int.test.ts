import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mainScript, nodeBinary, repoRoot } from "../testing/child-server.ts";

// The CLI runs the real binary against a fresh embedded database folder: only the PGlite project.

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function aforo(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(nodeBinary(), [mainScript, ...args], {
      cwd: repoRoot,
      env: { ...process.env, DATABASE_URL: "", ...env },
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

function json<T = Record<string, unknown>>(run: Run): T {
  expect(run.stderr).toBe("");
  expect(run.code).toBe(0);
  return JSON.parse(run.stdout) as T;
}

interface ApiKey {
  id: string;
  key?: string;
  status: string;
  mode: string;
  name: string | null;
  scopes: string[];
  redacted_key: string;
  expires_at: string | null;
  rotated_to: string | null;
  previous_key?: ApiKey;
}

describe.skipIf(process.env.AFORO_TEST_DATABASE === "postgres")("aforo CLI", () => {
  const folders: string[] = [];
  let dataDir = "";
  const inData = (args: string[]) => aforo(args, { AFORO_DATA_DIR: dataDir });

  async function freshFolder(): Promise<string> {
    const folder = await mkdtemp(path.join(tmpdir(), "aforo-cli-"));
    folders.push(folder);
    return folder;
  }

  beforeAll(async () => {
    dataDir = await freshFolder();
  });

  afterAll(async () => {
    await Promise.all(folders.map((folder) => rm(folder, { recursive: true, force: true })));
  });

  it("answers --help on the root and on every command with its options, exit 0", async () => {
    const expected: Array<[string[], string[]]> = [
      [[], ["tenants", "keys", "migrate", "start"]],
      [["tenants"], ["create", "list"]],
      [
        ["tenants", "create"],
        ["--name", "--slug", "--json"],
      ],
      [
        ["tenants", "list"],
        ["--limit", "--starting-after", "--json"],
      ],
      [["keys"], ["create", "list", "rotate", "revoke"]],
      [
        ["keys", "create"],
        ["--tenant", "--mode", "--scopes", "--name", "--json"],
      ],
      [
        ["keys", "list"],
        ["--tenant", "--mode", "--limit", "--json"],
      ],
      [
        ["keys", "rotate"],
        ["<key_id>", "--tenant", "--mode", "--json"],
      ],
      [
        ["keys", "revoke"],
        ["<key_id>", "--tenant", "--mode", "--json"],
      ],
      [["migrate"], ["--json"]],
    ];
    const runs = await Promise.all(expected.map(([command]) => aforo([...command, "--help"])));
    runs.forEach((run, index) => {
      const [command, options] = expected[index] ?? [[], []];
      expect(run.code, command.join(" ")).toBe(0);
      expect(run.stdout).toContain(`Usage: aforo ${command.join(" ")}`.trimEnd());
      for (const option of options) expect(run.stdout, command.join(" ")).toContain(option);
    });
  });

  it("rejects bad arguments with a usage error and a non-zero exit, before touching the database", async () => {
    const [badMode, missingTenant, badLimit, missingName] = await Promise.all([
      inData(["keys", "list", "--tenant", "acme", "--mode", "prod"]),
      inData(["keys", "create", "--mode", "live"]),
      inData(["tenants", "list", "--limit", "0"]),
      inData(["tenants", "create"]),
    ]);
    expect(badMode.code).not.toBe(0);
    expect(badMode.stderr).toContain("Allowed choices are live, test");
    expect(missingTenant.code).not.toBe(0);
    expect(missingTenant.stderr).toContain("required option '--tenant <id|slug>' not specified");
    expect(badLimit.code).not.toBe(0);
    expect(badLimit.stderr).toContain("--limit");
    expect(missingName.code).not.toBe(0);
    expect(missingName.stderr).toContain("--name");
  });

  it("stops with exit 2 and one line naming the variable when the environment is invalid", async () => {
    const run = await aforo(["migrate"], { AFORO_DATA_DIR: dataDir, PORT: "abc" });
    expect(run.code).toBe(2);
    expect(run.stdout).toBe("");
    expect(run.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(run.stderr).toContain("PORT");
  });

  // The first command on the shared folder: it finds every migration pending.
  it("migrates with --json, listing the migrations it applied", async () => {
    const outcome = json<{ applied: string[]; database: string }>(await inData(["migrate", "--json"]));
    expect(outcome.database).toBe("embedded");
    expect(outcome.applied.length).toBeGreaterThan(0);
  });

  it("refuses an embedded database folder locked by a running process, exit 1", async () => {
    const folder = await freshFolder();
    await writeFile(path.join(folder, "aforo.pid"), String(process.pid));
    const run = await aforo(["tenants", "list"], { AFORO_DATA_DIR: folder });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`in use by process ${process.pid}`);
  });

  it("creates a tenant, then creates, lists, rotates and revokes its keys, never listing a secret", async () => {
    const tenant = json<{
      id: string;
      object: string;
      slug: string;
      api_keys: { live: string; test: string };
    }>(await inData(["tenants", "create", "--name", "Acme Corp", "--slug", "acme", "--json"]));
    expect(tenant).toMatchObject({ object: "tenant", slug: "acme", name: "Acme Corp" });
    expect(tenant.id).toMatch(/^ten_/);
    expect(tenant.api_keys.live).toMatch(/^sk_live_/);
    expect(tenant.api_keys.test).toMatch(/^sk_test_/);

    const created = json<ApiKey>(
      await inData([
        "keys",
        ...["create", "--tenant", "acme", "--mode", "test"],
        ...["--scopes", "metering:write,entitlements:read", "--name", "ci", "--json"],
      ]),
    );
    expect(created).toMatchObject({
      object: "api_key",
      mode: "test",
      name: "ci",
      status: "active",
      scopes: ["metering:write", "entitlements:read"],
    });
    expect(created.key).toMatch(/^sk_test_/);
    expect(created.redacted_key).toBe(`sk_test_…${created.key?.slice(-4)}`);

    const rotated = json<ApiKey>(
      await inData(["keys", "rotate", created.id, "--tenant", tenant.id, "--mode", "test", "--json"]),
    );
    expect(rotated.id).not.toBe(created.id);
    expect(rotated.key).toMatch(/^sk_test_/);
    expect(rotated).toMatchObject({ status: "active", scopes: created.scopes, name: "ci" });
    expect(rotated.previous_key).toMatchObject({
      id: created.id,
      status: "expiring",
      rotated_to: rotated.id,
    });
    const overlapMs = Date.parse(rotated.previous_key?.expires_at ?? "") - Date.now();
    expect(overlapMs).toBeGreaterThan(4 * 60_000);
    expect(overlapMs).toBeLessThanOrEqual(5 * 60_000);

    const revoked = json<ApiKey>(
      await inData(["keys", "revoke", rotated.id, "--tenant", "acme", "--mode", "test", "--json"]),
    );
    expect(revoked).toMatchObject({ id: rotated.id, status: "revoked" });
    expect(revoked).not.toHaveProperty("key");

    const listRun = await inData(["keys", "list", "--tenant", "acme", "--mode", "test", "--json"]);
    const list = json<{ data: ApiKey[]; has_more: boolean }>(listRun);
    expect(list.has_more).toBe(false);
    expect(list.data.map((key) => [key.id, key.status])).toEqual([
      [rotated.id, "revoked"],
      [created.id, "expiring"],
      [expect.stringMatching(/^key_/), "active"],
    ]);
    for (const secret of [tenant.api_keys.test, created.key, rotated.key]) {
      expect(listRun.stdout).not.toContain(secret);
    }
    for (const key of list.data) expect(key).not.toHaveProperty("key");

    const tenants = json<{ data: Array<{ id: string }> }>(await inData(["tenants", "list", "--json"]));
    expect(tenants.data.map((row) => row.id)).toContain(tenant.id);
  }, 90_000); // a CLI process per step, each opening the embedded database: 25-28 s on a slow machine

  it("prints readable output without --json, and reports unknown tenants and keys as errors with exit 1", async () => {
    const created = await inData(["tenants", "create", "--name", "Beta Ltd"]);
    expect(created.code).toBe(0);
    expect(created.stdout).toMatch(/^slug:\s+beta-ltd$/m);
    expect(created.stdout).toMatch(/^live key:\s+sk_live_\w+$/m);
    expect(created.stdout).toMatch(/^test key:\s+sk_test_\w+$/m);
    expect(created.stdout).toContain("shown only once");

    const listed = await inData(["keys", "list", "--tenant", "beta-ltd", "--mode", "live"]);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/^ID\s+KEY\s+STATUS/);
    expect(listed.stdout).toMatch(/sk_live_…\w{4}\s+active/);
    expect(listed.stdout).not.toMatch(/sk_live_\w{20,}/);

    const unknownTenant = await inData(["keys", "list", "--tenant", "nope", "--mode", "live"]);
    expect(unknownTenant.code).toBe(1);
    expect(unknownTenant.stdout).toBe("");
    expect(unknownTenant.stderr).toBe("error: No tenant with id or slug 'nope'.\n");

    const unknownKey = await inData(["keys", "revoke", "key_nope", "--tenant", "beta-ltd", "--mode", "test"]);
    expect(unknownKey.code).toBe(1);
    expect(unknownKey.stderr).toMatch(/^error: No API key with id 'key_nope'/);
  });
});
