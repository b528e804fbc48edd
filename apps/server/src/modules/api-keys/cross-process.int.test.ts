import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../../clock.ts";
import { type AppContext, createContext } from "../../context.ts";
import { type DatabaseHandle, openDatabase } from "../../db/database.ts";
import { migrateToLatest } from "../../db/migrate.ts";
import { testConfig, testDatabaseKind } from "../../testing/test-app.ts";

async function eventually(check: () => boolean, timeoutMs = 3_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return check();
}

// Two API processes on one PostgreSQL: keys made, rotated or revoked by one are seen by the other.
describe.skipIf(testDatabaseKind() !== "postgres")("API keys across processes", () => {
  const databaseUrl = process.env.DATABASE_URL ?? "";
  const schema = `test_${randomBytes(6).toString("hex")}`;
  const handles: DatabaseHandle[] = [];
  let first: AppContext;
  let second: AppContext;

  beforeAll(async () => {
    const admin = new pg.Client({ connectionString: databaseUrl });
    await admin.connect();
    await admin.query(`create schema ${schema}`);
    await admin.end();
    for (let i = 0; i < 2; i++)
      handles.push(await openDatabase({ databaseUrl, dataDir: "", schema, poolSize: 3 }));
    const [a, b] = handles as [DatabaseHandle, DatabaseHandle];
    await migrateToLatest(a.db);
    const clock = new ManualClock();
    first = await createContext(testConfig(), a, clock);
    second = await createContext(testConfig(), b, clock);
  });
  afterAll(async () => {
    await first.stop();
    await second.stop();
    for (const handle of handles) await handle.close();
    const admin = new pg.Client({ connectionString: databaseUrl });
    await admin.connect();
    await admin.query(`drop schema ${schema} cascade`);
    await admin.end();
  });

  it("accepts a key made by another process, and refuses it once that process revokes it", async () => {
    const created = await first.tenants.create({ name: "Cross Process" });
    const secret = created.keys.live.secret;
    expect(await eventually(() => second.keys.authenticate(secret) !== undefined)).toBe(true);
    await first.keys.revoke(created.tenant.id, "live", created.keys.live.record.id);
    expect(await eventually(() => second.keys.authenticate(secret) === undefined)).toBe(true);
  });
});
