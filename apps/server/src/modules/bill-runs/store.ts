import { type Kysely, type Selectable, sql } from "kysely";
import { fetchPage, type Page, type PageRequest } from "../../db/pagination.ts";
import type { Database } from "../../db/schema.ts";
import type { TenantScope } from "../../http/route-config.ts";
import { eventsWithEnrichment } from "../metering/store/events.ts";
import type { Subscription } from "../subscriptions/domain/subscription.ts";
import { fromDb as subscriptionFromDb } from "../subscriptions/store.ts";
import type { BillRun, ReconciliationEvent } from "./domain.ts";
import type { BillRunsTable } from "./tables.ts";

export function fromDb(row: Selectable<BillRunsTable>): BillRun {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    mode: row.mode,
    status: row.status,
    asOf: row.as_of,
    subscriptionsTotal: row.subscriptions_total,
    subscriptionsProcessed: row.subscriptions_processed,
    periodsInvoiced: row.periods_invoiced,
    invoicesCreated: row.invoices_created,
    invoiceIds: row.invoice_ids,
    error: row.error,
    heartbeatAt: row.heartbeat_at,
    createdAt: row.created_at,
    completedAt: row.completed_at,
  };
}

function scoped(db: Kysely<Database>, scope: TenantScope) {
  return db
    .selectFrom("bill_runs")
    .selectAll()
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode);
}

/** Inserts a RUNNING run; false when another run of the tenant and mode is RUNNING (unique index). */
export async function insertRun(db: Kysely<Database>, run: BillRun): Promise<boolean> {
  const inserted = await db
    .insertInto("bill_runs")
    .values({
      id: run.id,
      tenant_id: run.tenantId,
      mode: run.mode,
      status: run.status,
      as_of: run.asOf,
      invoice_ids: JSON.stringify(run.invoiceIds),
      heartbeat_at: run.heartbeatAt,
      created_at: run.createdAt,
    })
    .onConflict((conflict) =>
      conflict.columns(["tenant_id", "mode"]).where("status", "=", "RUNNING").doNothing(),
    )
    .returning("id")
    .executeTakeFirst();
  return inserted !== undefined;
}

export async function findRun(
  db: Kysely<Database>,
  scope: TenantScope,
  id: string,
): Promise<BillRun | undefined> {
  const row = await scoped(db, scope).where("id", "=", id).executeTakeFirst();
  return row && fromDb(row);
}

export async function findRunning(db: Kysely<Database>, scope: TenantScope): Promise<BillRun | undefined> {
  const row = await scoped(db, scope).where("status", "=", "RUNNING").executeTakeFirst();
  return row && fromDb(row);
}

export async function listRuns(
  db: Kysely<Database>,
  scope: TenantScope,
  page: PageRequest,
): Promise<Page<BillRun>> {
  const result = await fetchPage(scoped(db, scope), "id", page);
  return { data: result.data.map(fromDb), has_more: result.has_more };
}

export interface Progress {
  subscriptionsTotal?: number;
  subscriptionsProcessed: number;
  periodsInvoiced: number;
  invoicesCreated: number;
  invoiceIds: string[];
  heartbeatAt: Date;
}

/** Writes progress while the run is RUNNING; false when it is not (another run took it over). */
export async function saveProgress(db: Kysely<Database>, run: BillRun, progress: Progress): Promise<boolean> {
  const result = await db
    .updateTable("bill_runs")
    .set({
      ...(progress.subscriptionsTotal !== undefined
        ? { subscriptions_total: progress.subscriptionsTotal }
        : {}),
      subscriptions_processed: progress.subscriptionsProcessed,
      periods_invoiced: progress.periodsInvoiced,
      invoices_created: progress.invoicesCreated,
      invoice_ids: JSON.stringify(progress.invoiceIds),
      heartbeat_at: progress.heartbeatAt,
    })
    .where("tenant_id", "=", run.tenantId)
    .where("mode", "=", run.mode)
    .where("id", "=", run.id)
    .where("status", "=", "RUNNING")
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

export async function finishRun(
  db: Kysely<Database>,
  run: Pick<BillRun, "id" | "tenantId" | "mode">,
  status: "COMPLETED" | "FAILED",
  at: Date,
  error: string | null,
): Promise<BillRun | undefined> {
  const row = await db
    .updateTable("bill_runs")
    .set({ status, error, completed_at: at, heartbeat_at: at })
    .where("tenant_id", "=", run.tenantId)
    .where("mode", "=", run.mode)
    .where("id", "=", run.id)
    .where("status", "=", "RUNNING")
    .returningAll()
    .executeTakeFirst();
  return row && fromDb(row);
}

export async function countSubscriptions(db: Kysely<Database>, scope: TenantScope): Promise<number> {
  const row = await db
    .selectFrom("subscriptions")
    .select((eb) => eb.fn.countAll<string | number | bigint>().as("count"))
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .executeTakeFirstOrThrow();
  return Number(row.count);
}

/** A page of the tenant's subscriptions in id order, after `afterId`. */
export async function subscriptionsAfter(
  db: Kysely<Database>,
  scope: TenantScope,
  afterId: string | undefined,
  limit: number,
): Promise<Subscription[]> {
  let query = db
    .selectFrom("subscriptions")
    .selectAll()
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode);
  if (afterId !== undefined) query = query.where("id", ">", afterId);
  const rows = await query.orderBy("id").limit(limit).execute();
  return rows.map(subscriptionFromDb);
}

/**
 * The end of the last period invoiced, per subscription (absent: none yet). One index probe per
 * subscription (LATERAL): planned without statistics — the embedded database has no autovacuum,
 * and a first run fills the table as it goes — an IN list scans the whole table for every page.
 */
export async function billedThrough(
  db: Kysely<Database>,
  scope: TenantScope,
  subscriptionIds: readonly string[],
): Promise<Map<string, Date>> {
  if (subscriptionIds.length === 0) return new Map();
  const { rows } = await sql<{ subscription_id: string; through: Date | string }>`
    select k.id as subscription_id, x.through from unnest(${[...subscriptionIds]}::text[]) as k(id)
    cross join lateral (
      select max(b.period_end) as through from billed_periods b
      where b.subscription_id = k.id and b.tenant_id = ${scope.tenantId} and b.mode = ${scope.mode}
    ) as x
    where x.through is not null
  `.execute(db);
  return new Map(rows.map((row) => [row.subscription_id, new Date(row.through)]));
}

export interface BilledPeriodRow {
  subscriptionId: string;
  customerId: string;
  periodStart: Date;
  periodEnd: Date;
  billableUnitIds: string[];
  invoiceId: string;
  billRunId: string | null;
}

export async function recordBilledPeriod(
  db: Kysely<Database>,
  scope: TenantScope,
  row: BilledPeriodRow,
): Promise<void> {
  await db
    .insertInto("billed_periods")
    .values({
      tenant_id: scope.tenantId,
      mode: scope.mode,
      subscription_id: row.subscriptionId,
      customer_id: row.customerId,
      period_start: row.periodStart,
      period_end: row.periodEnd,
      billable_unit_ids: row.billableUnitIds,
      invoice_id: row.invoiceId,
      bill_run_id: row.billRunId,
    })
    .onConflict((conflict) => conflict.columns(["subscription_id", "period_start"]).doNothing())
    .execute();
}

/** recordBilledPeriod for many periods in one statement per slice (a bill run's chunk). */
export async function recordBilledPeriods(
  db: Kysely<Database>,
  scope: TenantScope,
  rows: readonly BilledPeriodRow[],
): Promise<void> {
  // 9 parameters a row: 3,000 rows stay far below PostgreSQL's 65,535 parameters.
  for (let first = 0; first < rows.length; first += 3_000) {
    await db
      .insertInto("billed_periods")
      .values(
        rows.slice(first, first + 3_000).map((row) => ({
          tenant_id: scope.tenantId,
          mode: scope.mode,
          subscription_id: row.subscriptionId,
          customer_id: row.customerId,
          period_start: row.periodStart,
          period_end: row.periodEnd,
          billable_unit_ids: row.billableUnitIds,
          invoice_id: row.invoiceId,
          bill_run_id: row.billRunId,
        })),
      )
      .onConflict((conflict) => conflict.columns(["subscription_id", "period_start"]).doNothing())
      .execute();
  }
}

/** Tenants and modes with a subscription whose last period ended and is not invoiced yet (roughly). */
export async function scopesWithDuePeriods(db: Kysely<Database>, asOf: Date): Promise<TenantScope[]> {
  const rows = await sql<{ tenant_id: string; mode: "live" | "test" }>`
    select distinct s.tenant_id, s.mode from subscriptions s
    where s.start_at < ${asOf}
      and coalesce(
        (select max(b.period_end) from billed_periods b where b.subscription_id = s.id),
        s.trial_end_at, s.start_at
      ) < least(s.current_period_start, coalesce(s.ended_at, s.current_period_start), ${asOf})
  `.execute(db);
  return rows.rows.map((row) => ({ tenantId: row.tenant_id, mode: row.mode }));
}

// ---- Late events -----------------------------------------------------------------------------------

/**
 * The subscription's late events kept for reconciliation and not yet adjusted: tagged with the
 * subscription at ingest, or untagged events of its customer. Filtered-out events never count.
 */
export async function reconciliationEvents(
  db: Kysely<Database>,
  scope: TenantScope,
  subscription: Pick<Subscription, "id" | "customerId">,
): Promise<ReconciliationEvent[]> {
  const rows = await eventsWithEnrichment(db)
    .select(["e.id", "e.billable_unit_id", "e.occurred_at", "e.quantity", "e.value"])
    .where("e.tenant_id", "=", scope.tenantId)
    .where("e.mode", "=", scope.mode)
    .where("e.customer_id", "=", subscription.customerId)
    .where(sql<boolean>`'RECONCILIATION' = any(e.flags)`)
    .where(sql<boolean>`not ('FILTERED' = any(e.flags))`)
    .where((eb) =>
      eb.or([
        eb(sql`n.enrichment->>'subscription_id'`, "=", subscription.id),
        eb(sql`n.enrichment->>'subscription_id'`, "is", null),
      ]),
    )
    .where((eb) =>
      eb.not(
        eb.exists(
          eb.selectFrom("usage_adjustments as a").select("a.event_id").whereRef("a.event_id", "=", "e.id"),
        ),
      ),
    )
    .orderBy("e.occurred_at")
    .orderBy("e.id")
    .execute();
  return rows.map((row) => ({
    id: row.id,
    billableUnitId: row.billable_unit_id,
    occurredAt: row.occurred_at,
    quantity: row.quantity,
    value: row.value,
  }));
}

/** Records the events as adjusted on the invoice; returns the ids that were not adjusted before. */
export async function markAdjusted(
  db: Kysely<Database>,
  scope: TenantScope,
  eventIds: readonly string[],
  invoiceId: string,
): Promise<string[]> {
  if (eventIds.length === 0) return [];
  const rows = await db
    .insertInto("usage_adjustments")
    .values(
      eventIds.map((eventId) => ({
        event_id: eventId,
        tenant_id: scope.tenantId,
        mode: scope.mode,
        invoice_id: invoiceId,
      })),
    )
    .onConflict((conflict) => conflict.column("event_id").doNothing())
    .returning("event_id")
    .execute();
  return rows.map((row) => row.event_id);
}
