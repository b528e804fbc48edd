import { type Kysely, sql } from "kysely";

// Forward-only: never edit a migration that has shipped; add a new one.
export async function up(db: Kysely<unknown>): Promise<void> {
  // The zone whose midnights cut a subscription's periods, copied from the default billing entity
  // when the subscription is created. Existing subscriptions keep the UTC grid they were billed on.
  await sql`
    alter table subscriptions add column timezone text not null default 'UTC';
  `.execute(db);
}
