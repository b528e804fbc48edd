import { type Kysely, sql } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    -- GET /v1/usage without customer_id (one row per customer) reads one unit across customers:
    -- the per-customer indexes cannot serve that without scanning every customer.
    create index usage_events_unit_time on usage_events (tenant_id, mode, billable_unit_id, occurred_at)
      where counted;
    create index usage_rollups_unit_hour on usage_rollups (tenant_id, mode, billable_unit_id, hour);
  `.execute(db);
}
