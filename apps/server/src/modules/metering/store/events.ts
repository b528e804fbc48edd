import { type Kysely, type Selectable, sql } from "kysely";
import { fetchPage, type Page, type PageRequest } from "../../../db/pagination.ts";
import type { Database } from "../../../db/schema.ts";
import type { TenantScope } from "../../../http/route-config.ts";
import type { UsageEventsTable } from "../tables.ts";

export type StoredEvent = Selectable<UsageEventsTable>;

export const eventFlags = ["LATE", "RECONCILIATION", "FILTERED"] as const;
export type EventFlag = (typeof eventFlags)[number];

export interface EventFilter {
  customerId?: string | undefined;
  /** A resolved unit id; `metricKey` when the reference named no known unit. */
  billableUnitId?: string | undefined;
  metricKey?: string | undefined;
  flag?: EventFlag | undefined;
  /** On occurred_at: [from, to). */
  from?: Date | undefined;
  to?: Date | undefined;
}

/** Newest first by id; every query is fenced by tenant and mode. */
export function listEvents(
  db: Kysely<Database>,
  scope: TenantScope,
  filter: EventFilter,
  page: PageRequest,
): Promise<Page<StoredEvent>> {
  let query = db
    .selectFrom("usage_events")
    .selectAll()
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode);
  if (filter.customerId !== undefined) query = query.where("customer_id", "=", filter.customerId);
  if (filter.billableUnitId !== undefined)
    query = query.where("billable_unit_id", "=", filter.billableUnitId);
  if (filter.metricKey !== undefined) query = query.where("metric_key", "=", filter.metricKey);
  if (filter.flag !== undefined) {
    query = query.where(sql<boolean>`${filter.flag} = any(flags)`);
  }
  if (filter.from !== undefined) query = query.where("occurred_at", ">=", filter.from);
  if (filter.to !== undefined) query = query.where("occurred_at", "<", filter.to);
  return fetchPage(query, "id", page);
}

export function findEvent(
  db: Kysely<Database>,
  scope: TenantScope,
  id: string,
): Promise<StoredEvent | undefined> {
  return db
    .selectFrom("usage_events")
    .selectAll()
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("id", "=", id)
    .executeTakeFirst();
}
