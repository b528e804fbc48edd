import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { DataDirInUseError } from "./db/data-dir-lock.ts";
import { openDatabase } from "./db/database.ts";
import { startServer } from "./server.ts";
import { testConfig, testDatabaseKind } from "./testing/test-app.ts";

// Starts the real server on the embedded database in a temporary folder.
describe.skipIf(testDatabaseKind() === "postgres")("the server process", () => {
  const folders: string[] = [];
  afterAll(async () => {
    for (const folder of folders) await rm(folder, { recursive: true, force: true });
  });
  async function freshDataDir() {
    const folder = await mkdtemp(path.join(tmpdir(), "aforo-server-"));
    folders.push(folder);
    return folder;
  }

  it("bootstraps once: an operator key and a sandbox tenant on first start, nothing on the next", async () => {
    const dataDir = await freshDataDir();
    const config = testConfig({
      dataDir,
      databaseUrl: undefined,
      operatorKey: undefined,
      port: 0,
      host: "127.0.0.1",
    });
    const first = await startServer(config);
    const operatorKey = first.firstStart?.operatorKey;
    const sandboxKey = first.firstStart?.sandbox.testKey;
    expect(operatorKey).toMatch(/^afo_/);
    expect(sandboxKey).toMatch(/^sk_test_/);
    const address = first.app.server.address();
    const port = typeof address === "object" && address ? address.port : 0;
    const list = await fetch(`http://127.0.0.1:${port}/v1/api_keys`, {
      headers: { authorization: `Bearer ${sandboxKey}`, "x-tenant-id": "sandbox" },
    });
    expect(list.status).toBe(200);
    await first.stop();

    const second = await startServer(config);
    expect(second.firstStart).toBeUndefined();
    const secondAddress = second.app.server.address();
    const secondPort = typeof secondAddress === "object" && secondAddress ? secondAddress.port : 0;
    const tenants = await fetch(`http://127.0.0.1:${secondPort}/v1/tenants`, {
      headers: { authorization: `Bearer ${operatorKey}` },
    });
    expect(tenants.status).toBe(200);
    await second.stop();
  });

  it("refuses to open an embedded database another process holds", async () => {
    const dataDir = await freshDataDir();
    const server = await startServer(
      testConfig({ dataDir, databaseUrl: undefined, port: 0, host: "127.0.0.1" }),
    );
    // Same process id counts as free (a restart in-process); simulate another live process.
    const { writeFile } = await import("node:fs/promises");
    await writeFile(path.join(dataDir, "aforo.pid"), String(process.ppid));
    await expect(openDatabase({ databaseUrl: undefined, dataDir })).rejects.toBeInstanceOf(DataDirInUseError);
    await writeFile(path.join(dataDir, "aforo.pid"), String(process.pid));
    await server.stop();
  });

  it("finishes in-flight requests on shutdown and refuses new ones", async () => {
    const dataDir = await freshDataDir();
    const config = testConfig({ dataDir, databaseUrl: undefined, port: 0, host: "127.0.0.1" });
    const server = await startServer(config);
    const address = server.app.server.address();
    const port = typeof address === "object" && address ? address.port : 0;
    // A request whose body is still arriving when shutdown begins is in flight: it must complete.
    const body = JSON.stringify({ name: "Created during shutdown" });
    const answer = new Promise<{ status: number; text: string }>((resolve, reject) => {
      const request = http.request(
        {
          host: "127.0.0.1",
          port,
          method: "POST",
          path: "/v1/tenants",
          headers: {
            authorization: `Bearer ${config.operatorKey}`,
            "content-type": "application/json",
            "content-length": Buffer.byteLength(body),
          },
        },
        (response) => {
          let text = "";
          response.on("data", (chunk) => {
            text += chunk;
          });
          response.on("end", () => resolve({ status: response.statusCode ?? 0, text }));
        },
      );
      request.on("error", reject);
      request.write(body.slice(0, 10));
      setTimeout(async () => {
        stopping = server.stop();
        await new Promise((r) => setTimeout(r, 200));
        request.end(body.slice(10));
      }, 200);
    });
    let stopping: Promise<void> | undefined;
    const response = await answer;
    expect(response.status, response.text).toBe(201);
    await stopping;
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
  });
});
