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
});
