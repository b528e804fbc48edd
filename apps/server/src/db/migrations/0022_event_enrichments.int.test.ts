import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openTestDatabase } from "../../testing/test-app.ts";
import type { DatabaseHandle } from "../database.ts";
import { migrateToLatest, migrateUpTo } from "../migrate.ts";

describe("migration 0022_event_enrichments", () => {
  let database: DatabaseHandle;
  let drop: () => Promise<void>;
  beforeAll(async () => {
    ({ database, drop } = await openTestDatabase());
  });
  afterAll(() => drop());

  it("moves each event's inline enrichment into one shared row per distinct enrichment", async () => {
    expect((await migrateUpTo(database.db, "0021_usage_events_tenant_key")).applied).toContain(
      "0021_usage_events_tenant_key",
    );
    const enrichment = { subscription_id: "sub_1", currency: "USD" };
    for (const [id, value] of [
      ["evt_1", enrichment],
      ["evt_2", enrichment],
      ["evt_3", {}],
    ] as const) {
      await sql`
        insert into usage_events (id, tenant_id, mode, idempotency_key, customer_id, billable_unit_id,
          metric_key, quantity, occurred_at, received_at, source, counted, enrichment)
        values (${id}, 'ten_1', 'live', ${id}, 'cus_1', 'bu_1', 'calls', 1, now(), now(), 'api', true,
          ${JSON.stringify(value)}::jsonb)
      `.execute(database.db);
    }

    await migrateToLatest(database.db);

    const moved = await sql<{ id: string; enrichment: Record<string, unknown> | null }>`
      select e.id, n.enrichment from usage_events e
      left join event_enrichments n on n.tenant_id = e.tenant_id and n.mode = e.mode and n.id = e.enrichment_id
      order by e.id
    `.execute(database.db);
    expect(moved.rows).toEqual([
      { id: "evt_1", enrichment },
      { id: "evt_2", enrichment },
      { id: "evt_3", enrichment: null },
    ]);
    const shared = await sql<{
      count: string;
    }>`select count(*)::text as count from event_enrichments`.execute(database.db);
    expect(shared.rows[0]?.count).toBe("1");
  });
});
