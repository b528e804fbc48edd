import type { Kysely, Selectable } from "kysely";
import { fetchPage, type Page, type PageRequest } from "../../../db/pagination.ts";
import type { Database } from "../../../db/schema.ts";
import type { TenantScope } from "../../../http/route-config.ts";
import type { DeadLettersTable } from "../tables.ts";

export type StoredDeadLetter = Selectable<DeadLettersTable>;
export type DeadLetterStatus = DeadLettersTable["status"];

export interface DeadLetterFilter {
  status?: DeadLetterStatus | undefined;
  source?: string | undefined;
  reasonCode?: string | undefined;
}

export function listDeadLetters(
  db: Kysely<Database>,
  scope: TenantScope,
  filter: DeadLetterFilter,
  page: PageRequest,
): Promise<Page<StoredDeadLetter>> {
  let query = db
    .selectFrom("dead_letters")
    .selectAll()
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode);
  if (filter.status !== undefined) query = query.where("status", "=", filter.status);
  if (filter.source !== undefined) query = query.where("source", "=", filter.source);
  if (filter.reasonCode !== undefined) query = query.where("reason_code", "=", filter.reasonCode);
  return fetchPage(query, "id", page);
}

export function findDeadLetter(
  db: Kysely<Database>,
  scope: TenantScope,
  id: string,
): Promise<StoredDeadLetter | undefined> {
  return db
    .selectFrom("dead_letters")
    .selectAll()
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("id", "=", id)
    .executeTakeFirst();
}

/**
 * PENDING → REPLAYED as one conditional update: of two concurrent replays exactly one claims the
 * letter (the other finds nothing to update), so a payload is never re-ingested twice at once.
 */
export function claimDeadLetter(
  db: Kysely<Database>,
  scope: TenantScope,
  id: string,
  at: Date,
): Promise<StoredDeadLetter | undefined> {
  return db
    .updateTable("dead_letters")
    .set({ status: "REPLAYED", replayed_at: at, replayed_event_id: null })
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("id", "=", id)
    .where("status", "=", "PENDING")
    .returningAll()
    .executeTakeFirst();
}

export async function recordReplayedEvent(
  db: Kysely<Database>,
  scope: TenantScope,
  id: string,
  eventId: string,
): Promise<StoredDeadLetter> {
  return db
    .updateTable("dead_letters")
    .set({ replayed_event_id: eventId })
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("id", "=", id)
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** Back to PENDING, with the reason of the latest rejection when there is one. */
export async function releaseDeadLetter(
  db: Kysely<Database>,
  scope: TenantScope,
  id: string,
  reason?: { code: string; text: string },
): Promise<void> {
  await db
    .updateTable("dead_letters")
    .set({
      status: "PENDING",
      replayed_at: null,
      replayed_event_id: null,
      ...(reason ? { reason_code: reason.code, reason: reason.text } : {}),
    })
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("id", "=", id)
    .execute();
}
