/**
 * Set-based reads and writes of a bill run's chunk (billing/batch.ts): one statement per kind of
 * row for a whole chunk of subscriptions, where invoicePeriod reads and writes one at a time.
 * Each function answers what its one-at-a-time counterpart answers, for every key at once.
 */
import { type Kysely, sql } from "kysely";
import type { Database } from "../../../db/schema.ts";
import type { TenantScope } from "../../../http/route-config.ts";
import type { Customer } from "../../customers/domain.ts";
import { fromDb as customerFromDb } from "../../customers/store.ts";
import type { Subscription } from "../../subscriptions/domain/subscription.ts";
import { fromDb as subscriptionFromDb } from "../../subscriptions/store.ts";
import type { Invoice } from "../domain/invoice.ts";
import { draftRow, lineRows } from "./invoices.ts";

/*
 * Lookups by lists of non-unique keys probe an index once per key (a LATERAL subquery per key):
 * planned without statistics — the embedded database has no autovacuum, and a first run fills its
 * tables as it goes — an IN list or a join against the whole table turns into sequential scans.
 */

/** PostgreSQL takes at most 65,535 parameters per statement; stay well below. */
const MAX_PARAMETERS = 30_000;

/** `rows` cut into statements of at most MAX_PARAMETERS parameters. */
export function slices<T>(rows: readonly T[], columns: number): T[][] {
  const size = Math.max(1, Math.floor(MAX_PARAMETERS / Math.max(1, columns)));
  const out: T[][] = [];
  for (let first = 0; first < rows.length; first += size) out.push(rows.slice(first, first + size));
  return out;
}

/** A subscription period's key in the maps below. */
export function periodKey(subscriptionId: string, periodStart: Date): string {
  return `${subscriptionId}\u0000${periodStart.getTime()}`;
}

export interface PeriodRef {
  subscriptionId: string;
  periodStart: Date;
}

export async function findSubscriptions(
  db: Kysely<Database>,
  scope: TenantScope,
  ids: readonly string[],
): Promise<Map<string, Subscription>> {
  const found = new Map<string, Subscription>();
  for (const slice of slices(ids, 1)) {
    const rows = await db
      .selectFrom("subscriptions")
      .selectAll()
      .where("tenant_id", "=", scope.tenantId)
      .where("mode", "=", scope.mode)
      .where("id", "in", slice)
      .execute();
    for (const row of rows) found.set(row.id, subscriptionFromDb(row));
  }
  return found;
}

/** Customers by id (invoicing reads a subscription's customer by id). */
export async function findCustomers(
  db: Kysely<Database>,
  scope: TenantScope,
  ids: readonly string[],
): Promise<Map<string, Customer>> {
  const found = new Map<string, Customer>();
  for (const slice of slices([...new Set(ids)], 1)) {
    const rows = await db
      .selectFrom("customers")
      .selectAll()
      .where("tenant_id", "=", scope.tenantId)
      .where("mode", "=", scope.mode)
      .where("id", "in", slice)
      .execute();
    for (const row of rows) found.set(row.id, customerFromDb(row));
  }
  return found;
}

/** The allowance carried into each period (carryIn), by periodKey; absent keys carry nothing. */
export async function carryInsFor(
  db: Kysely<Database>,
  scope: TenantScope,
  refs: readonly PeriodRef[],
): Promise<Map<string, Record<string, string>>> {
  const found = new Map<string, Record<string, string>>();
  for (const slice of slices(refs, 2)) {
    const { rows } = await sql<{
      subscription_id: string;
      period_start: Date | string;
      billable_unit: string;
      quantity: string;
    }>`
      select k.subscription_id, k.period_start, x.billable_unit, x.quantity
      from unnest(
        ${slice.map((ref) => ref.subscriptionId)}::text[],
        ${slice.map((ref) => ref.periodStart.toISOString())}::timestamptz[]
      ) as k(subscription_id, period_start)
      cross join lateral (
        select r.billable_unit, r.quantity from subscription_rollovers r
        where r.tenant_id = ${scope.tenantId} and r.mode = ${scope.mode}
          and r.subscription_id = k.subscription_id and r.period_start = k.period_start
        offset 0
      ) as x
    `.execute(db);
    for (const row of rows) {
      const key = periodKey(row.subscription_id, new Date(row.period_start));
      const record = found.get(key) ?? {};
      record[row.billable_unit] = row.quantity;
      found.set(key, record);
    }
  }
  return found;
}

/**
 * The customers with late events kept for reconciliation and not adjusted yet: a superset of the
 * ones whose invoices adjust something (bill runs' reconciliationEvents also match the events to
 * the subscription). Rare, and served by the partial index usage_events_reconciliation.
 */
export async function customersWithLateEvents(
  db: Kysely<Database>,
  scope: TenantScope,
  customerIds: readonly string[],
): Promise<Set<string>> {
  const found = new Set<string>();
  for (const slice of slices([...new Set(customerIds)], 1)) {
    const { rows } = await sql<{ customer_id: string }>`
      select distinct e.customer_id from usage_events e
      where e.tenant_id = ${scope.tenantId} and e.mode = ${scope.mode}
        and e.customer_id = any(${slice}::text[])
        and 'RECONCILIATION' = any(e.flags) and not ('FILTERED' = any(e.flags))
        and not exists (select 1 from usage_adjustments a where a.event_id = e.id)
    `.execute(db);
    for (const row of rows) found.add(row.customer_id);
  }
  return found;
}

/**
 * Inserts the drafts and their lines (insertDraft, many at once); a period already invoiced is
 * left alone. Returns the ids this call inserted.
 */
export async function insertDrafts(db: Kysely<Database>, invoices: readonly Invoice[]): Promise<Set<string>> {
  const inserted = new Set<string>();
  if (invoices.length === 0) return inserted;
  const rows = invoices.map(draftRow);
  for (const slice of slices(rows, Object.keys(rows[0] ?? {}).length)) {
    const ids = await db
      .insertInto("invoices")
      .values(slice)
      .onConflict((conflict) =>
        conflict.columns(["tenant_id", "mode", "subscription_id", "period_start"]).doNothing(),
      )
      .returning("id")
      .execute();
    for (const { id } of ids) inserted.add(id);
  }
  const lines = invoices.filter((invoice) => inserted.has(invoice.id)).flatMap(lineRows);
  for (const slice of slices(lines, Object.keys(lines[0] ?? {}).length)) {
    await db.insertInto("invoice_lines").values(slice).execute();
  }
  return inserted;
}

export interface CarryOut {
  subscriptionId: string;
  /** The next period's start (the invoice's period end). */
  periodStart: Date;
  invoiceId: string;
  quantities: Record<string, string>;
}

/** saveCarryOut for many invoices at once. */
export async function saveCarryOuts(
  db: Kysely<Database>,
  scope: TenantScope,
  carryOuts: readonly CarryOut[],
): Promise<void> {
  const rows = carryOuts.flatMap((carry) =>
    Object.entries(carry.quantities).map(([unit, quantity]) => ({
      tenant_id: scope.tenantId,
      mode: scope.mode,
      subscription_id: carry.subscriptionId,
      billable_unit: unit,
      period_start: carry.periodStart,
      quantity,
      invoice_id: carry.invoiceId,
    })),
  );
  for (const slice of slices(rows, 7)) {
    await db
      .insertInto("subscription_rollovers")
      .values(slice)
      .onConflict((conflict) =>
        conflict
          .columns(["tenant_id", "mode", "subscription_id", "billable_unit", "period_start"])
          .doNothing(),
      )
      .execute();
  }
}

const iso = (at: Date | null) => (at === null ? null : at.toISOString());

/**
 * updateInvoiceState for many invoices of one tenant and mode in one statement per slice: the
 * same state columns, each row its own values.
 */
export async function updateInvoiceStates(
  db: Kysely<Database>,
  scope: TenantScope,
  invoices: readonly Invoice[],
): Promise<void> {
  for (const slice of slices(invoices, 14)) {
    const column = <T>(pick: (invoice: Invoice) => T) => slice.map(pick);
    await sql`
      update invoices as i set
        status = v.status, number = v.number, billing_entity_id = v.billing_entity_id,
        issued_at = v.issued_at, due_at = v.due_at, finalized_at = v.finalized_at,
        paid_at = v.paid_at, voided_at = v.voided_at, marked_uncollectible_at = v.marked_uncollectible_at,
        amount_due = v.amount_due, amount_paid = v.amount_paid, payment_method = v.payment_method,
        credit_notes_total = v.credit_notes_total
      from unnest(
        ${column((invoice) => invoice.id)}::text[],
        ${column((invoice) => invoice.status)}::text[],
        ${column((invoice) => invoice.number)}::text[],
        ${column((invoice) => invoice.billingEntityId)}::text[],
        ${column((invoice) => iso(invoice.issuedAt))}::timestamptz[],
        ${column((invoice) => iso(invoice.dueAt))}::timestamptz[],
        ${column((invoice) => iso(invoice.finalizedAt))}::timestamptz[],
        ${column((invoice) => iso(invoice.paidAt))}::timestamptz[],
        ${column((invoice) => iso(invoice.voidedAt))}::timestamptz[],
        ${column((invoice) => iso(invoice.markedUncollectibleAt))}::timestamptz[],
        ${column((invoice) => String(invoice.amountDue))}::bigint[],
        ${column((invoice) => String(invoice.amountPaid))}::bigint[],
        ${column((invoice) => invoice.paymentMethod)}::text[],
        ${column((invoice) => String(invoice.creditNotesTotal))}::bigint[]
      ) as v(
        id, status, number, billing_entity_id, issued_at, due_at, finalized_at, paid_at, voided_at,
        marked_uncollectible_at, amount_due, amount_paid, payment_method, credit_notes_total
      )
      where i.tenant_id = ${scope.tenantId} and i.mode = ${scope.mode} and i.id = v.id
    `.execute(db);
  }
}
