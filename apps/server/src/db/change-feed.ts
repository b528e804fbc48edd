import { sql } from "kysely";
import type { DatabaseHandle } from "./database.ts";

/**
 * Tells other processes that a record changed, so they refresh their in-memory copy. PostgreSQL's
 * NOTIFY is delivered on commit; the embedded database is one process, so there is nobody to tell.
 */
export async function announceChange(database: DatabaseHandle, channel: string, id: string): Promise<void> {
  if (database.kind !== "postgres") return;
  await sql`select pg_notify(${channel}, ${id})`.execute(database.db);
}
