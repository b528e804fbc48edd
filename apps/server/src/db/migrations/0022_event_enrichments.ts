import { type Kysely, sql } from "kysely";

/**
 * An event's enrichment (its subscription, plan version, pricing model, currency and period) is the
 * same for every event of a subscription item's period, yet each event stored its own copy: 330 of
 * a 590-byte row, parsed as JSON for every event ingested. Each distinct enrichment is now stored
 * once, under the hash of its JSON, and events refer to it; reads join it back. The rows halve and
 * so does the write-ahead log per event. Existing events are moved over (this runs before Aforo's
 * first release).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table event_enrichments (
      tenant_id text not null,
      mode text not null,
      id text not null,
      enrichment jsonb not null,
      primary key (tenant_id, mode, id)
    );
    alter table usage_events add column enrichment_id text;
    insert into event_enrichments (tenant_id, mode, id, enrichment)
      select distinct tenant_id, mode, 'md5:' || md5(enrichment::text), enrichment
      from usage_events where enrichment <> '{}'::jsonb;
    update usage_events set enrichment_id = 'md5:' || md5(enrichment::text) where enrichment <> '{}'::jsonb;
    alter table usage_events drop column enrichment;
  `.execute(db);
}
