import { type Kysely, sql } from "kysely";

// Consumer keys (ak_) identify a tenant's customer at the gateway; metering and canAccess resolve them.
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    alter table api_keys add column customer_id text;
    create index api_keys_subscription on api_keys (subscription_id) where subscription_id is not null;
  `.execute(db);
}
