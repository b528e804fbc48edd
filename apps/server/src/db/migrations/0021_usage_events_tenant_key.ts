import { type Kysely, sql } from "kysely";

/**
 * Every event read is fenced by tenant and mode, so the primary key on id alone served no query
 * the listing index (tenant_id, mode, id) did not, while every ingested event paid for both. The
 * primary key becomes (tenant_id, mode, id) and the listing index goes: one index fewer to
 * maintain per event on the ingest path. (Rebuilding a primary key locks the table while it
 * builds; this runs before Aforo's first release.)
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    alter table usage_events drop constraint usage_events_pkey;
    alter table usage_events add constraint usage_events_pkey primary key (tenant_id, mode, id);
    drop index usage_events_listing;
  `.execute(db);
}
