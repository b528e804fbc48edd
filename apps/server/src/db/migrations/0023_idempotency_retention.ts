import { type Kysely, sql } from "kysely";

/**
 * Idempotency keys are kept 24 hours (http/idempotency.ts): the hourly sweep finds the expired
 * ones by age, a slice at a time, without reading the whole table.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create index idempotency_requests_created on idempotency_requests (created_at)`.execute(db);
}
