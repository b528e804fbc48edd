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

/**
 * Keeps an in-memory copy in step with other processes: listens to `channel` first (a change
 * committed while the copy loads is then not missed), loads everything, and loads everything again
 * when a lost listener connection is back (the notifications sent meanwhile are gone). Answers the
 * function that stops listening.
 */
export async function followChanges(
  database: DatabaseHandle,
  channel: string,
  onChange: (payload: string) => void,
  loadAll: () => Promise<void>,
): Promise<() => Promise<void>> {
  const unlisten = await database.listen(channel, onChange, () => void loadAll().catch(() => undefined));
  await loadAll();
  return unlisten;
}
