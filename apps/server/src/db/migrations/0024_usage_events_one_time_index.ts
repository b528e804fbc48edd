import { type Kysely, sql } from "kysely";

/**
 * usage_events keeps one time index, per customer. Reads across a unit's customers (GET /v1/usage
 * without customer_id on the raw path, LATEST's lookup, the minute counters' rebuild) now take the
 * customers from the hourly rollups and walk usage_events_customer_time one customer after another
 * (metering/store/usage.ts). Maintaining usage_events_unit_time cost every ingested event about a
 * fifth of its INSERT's time in PostgreSQL, for reads that are rare.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`drop index if exists usage_events_unit_time`.execute(db);
}
