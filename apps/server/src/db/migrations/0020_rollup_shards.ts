import { type Kysely, sql } from "kysely";

/**
 * Concurrent group commits used to meet on one rollup row (a busy customer's current hour) and
 * wait for each other's commit, one WAL flush after another. Each writer lane now folds into its
 * own shard of the hour, so lanes commit side by side; every read already sums, maxes or mins over
 * the rows of an hour, so an hour split over shards reads the same.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    alter table usage_rollups add column shard smallint not null default 0;
    alter table usage_rollups drop constraint usage_rollups_pkey;
    alter table usage_rollups add primary key (tenant_id, mode, customer_id, billable_unit_id, hour, shard);
  `.execute(db);
}
