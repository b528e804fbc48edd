import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AppContext } from "../../context.ts";
import { testDatabaseKind } from "../../testing/test-app.ts";
import { eventually, type TwoProcesses, twoProcesses } from "../../testing/two-processes.ts";

// Two API processes on one PostgreSQL: keys made, rotated or revoked by one are seen by the other.
describe.skipIf(testDatabaseKind() !== "postgres")("API keys across processes", () => {
  let first: AppContext;
  let second: AppContext;
  let processes: TwoProcesses;

  beforeAll(async () => {
    processes = await twoProcesses(process.env.DATABASE_URL ?? "");
    ({ first, second } = processes);
  });
  afterAll(() => processes.close());

  it("accepts a key made by another process, and refuses it once that process revokes it", async () => {
    const created = await first.tenants.create({ name: "Cross Process" });
    const secret = created.keys.live.secret;
    expect(await eventually(() => second.keys.authenticate(secret) !== undefined)).toBe(true);
    await first.keys.revoke(created.tenant.id, "live", created.keys.live.record.id);
    expect(await eventually(() => second.keys.authenticate(secret) === undefined)).toBe(true);
  });

  it("catches up after its LISTEN connection is cut: a key revoked meanwhile is refused", async () => {
    const created = await first.tenants.create({ name: "Cut Listener" });
    const secret = created.keys.live.secret;
    expect(await eventually(() => second.keys.authenticate(secret) !== undefined)).toBe(true);
    // Both processes' listener connections are cut (as a PostgreSQL restart would); the revocation
    // is announced while they are away, so its NOTIFY reaches nobody.
    const { rows } = await sql<{ schema: string }>`select current_schema() as schema`.execute(
      first.database.db,
    );
    const cut = await sql<{ pid: number }>`
      select pid from pg_stat_activity where application_name = ${`aforo-listener:${rows[0]?.schema}`}
    `.execute(first.database.db);
    expect(cut.rows.length).toBeGreaterThan(0);
    await sql`
      select pg_terminate_backend(pid) from pg_stat_activity
      where application_name = ${`aforo-listener:${rows[0]?.schema}`}
    `.execute(first.database.db);
    await first.keys.revoke(created.tenant.id, "live", created.keys.live.record.id);
    // The listener comes back and reloads what it may have missed.
    expect(await eventually(() => second.keys.authenticate(secret) === undefined, 10_000)).toBe(true);
    // And it hears new announcements again.
    const later = await first.tenants.create({ name: "After Reconnect" });
    expect(
      await eventually(() => second.keys.authenticate(later.keys.live.secret) !== undefined, 10_000),
    ).toBe(true);
  });
});
