import { type Kysely, type Selectable, sql } from "kysely";
import { fetchPage, type Page, type PageRequest } from "../../../db/pagination.ts";
import type { Database } from "../../../db/schema.ts";
import type { TenantScope } from "../../../http/route-config.ts";
import type { UsageEventsTable } from "../tables.ts";

export type StoredEvent = Selectable<UsageEventsTable> & { enrichment: Record<string, unknown> };

/**
 * Events (`e`) with their enrichment (`n`, null when nothing enriched the event) joined back: each
 * distinct enrichment is stored once in event_enrichments and events refer to it.
 */
export function eventsWithEnrichment(db: Kysely<Database>) {
  return db
    .selectFrom("usage_events as e")
    .leftJoin("event_enrichments as n", (join) =>
      join
        .onRef("n.tenant_id", "=", "e.tenant_id")
        .onRef("n.mode", "=", "e.mode")
        .onRef("n.id", "=", "e.enrichment_id"),
    );
}

function eventsOf(db: Kysely<Database>, scope: TenantScope) {
  return eventsWithEnrichment(db)
    .selectAll("e")
    .select(sql<Record<string, unknown>>`coalesce(n.enrichment, '{}'::jsonb)`.as("enrichment"))
    .where("e.tenant_id", "=", scope.tenantId)
    .where("e.mode", "=", scope.mode);
}

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
  let query = eventsOf(db, scope);
  if (filter.customerId !== undefined) query = query.where("e.customer_id", "=", filter.customerId);
  if (filter.billableUnitId !== undefined)
    query = query.where("e.billable_unit_id", "=", filter.billableUnitId);
  if (filter.metricKey !== undefined) query = query.where("e.metric_key", "=", filter.metricKey);
  if (filter.flag !== undefined) {
    query = query.where(sql<boolean>`${filter.flag} = any(e.flags)`);
  }
  if (filter.from !== undefined) query = query.where("e.occurred_at", ">=", filter.from);
  if (filter.to !== undefined) query = query.where("e.occurred_at", "<", filter.to);
  return fetchPage(query, "e.id", page);
}

export function findEvent(
  db: Kysely<Database>,
  scope: TenantScope,
  id: string,
): Promise<StoredEvent | undefined> {
  return eventsOf(db, scope).where("e.id", "=", id).executeTakeFirst();
}
