import { type Kysely, type Selectable, sql } from "kysely";
import { fetchPage, type Page, type PageRequest } from "../../db/pagination.ts";
import type { Database, Mode } from "../../db/schema.ts";
import type { TenantScope } from "../../http/route-config.ts";
import type {
  DunningCycle,
  DunningStatus,
  MethodProvider,
  Payment,
  PaymentMethod,
  PaymentStatus,
  PaymentTrigger,
  ProviderName,
} from "./domain.ts";
import type {
  DunningCyclesTable,
  PaymentMethodsTable,
  PaymentSettingsTable,
  PaymentsTable,
} from "./tables.ts";

type Db = Kysely<Database>;

/** A row of another tenant's work, found by a pass over every tenant. */
export interface Scoped<T> {
  scope: TenantScope;
  value: T;
}

const scoped = <T>(tenantId: string, mode: Mode, value: T): Scoped<T> => ({
  scope: { tenantId, mode },
  value,
});

// ---- Settings -----------------------------------------------------------------------------------

export async function findSettings(
  db: Db,
  scope: TenantScope,
): Promise<Selectable<PaymentSettingsTable> | undefined> {
  return db
    .selectFrom("payment_settings")
    .selectAll()
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .executeTakeFirst();
}

export interface SettingsChanges {
  stripe?: { sealed: string; hint: string } | null | undefined;
  automaticCollection?: boolean | undefined;
  dunningScheduleDays?: number[] | null | undefined;
}

/** Creates the row or changes only the fields given (undefined: unchanged, null: removed). */
export async function saveSettings(
  db: Db,
  scope: TenantScope,
  changes: SettingsChanges,
  now: Date,
): Promise<void> {
  const stripe =
    changes.stripe === undefined
      ? {}
      : {
          stripe_secret_sealed: changes.stripe?.sealed ?? null,
          stripe_secret_hint: changes.stripe?.hint ?? null,
          stripe_updated_at: changes.stripe ? now : null,
        };
  const dunning =
    changes.dunningScheduleDays === undefined
      ? {}
      : {
          dunning_schedule_days:
            changes.dunningScheduleDays === null ? null : JSON.stringify(changes.dunningScheduleDays),
        };
  const collection =
    changes.automaticCollection === undefined ? {} : { automatic_collection: changes.automaticCollection };
  const set = { ...stripe, ...collection, ...dunning, updated_at: now };
  await db
    .insertInto("payment_settings")
    .values({ tenant_id: scope.tenantId, mode: scope.mode, ...set })
    .onConflict((conflict) => conflict.columns(["tenant_id", "mode"]).doUpdateSet(set))
    .execute();
}

// ---- Payment methods ----------------------------------------------------------------------------

function fromMethodRow(row: Selectable<PaymentMethodsTable>): PaymentMethod {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    mode: row.mode,
    customerId: row.customer_id,
    provider: row.provider as MethodProvider,
    providerPaymentMethodId: row.provider_payment_method_id,
    providerCustomerId: row.provider_customer_id,
    isDefault: row.is_default,
    createdAt: new Date(row.created_at),
    removedAt: row.removed_at && new Date(row.removed_at),
  };
}

/** Serialises changes to one customer's methods (at most one default) across processes. */
export async function lockCustomer(db: Db, scope: TenantScope, customerId: string): Promise<void> {
  await db
    .selectFrom("customers")
    .select("id")
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("id", "=", customerId)
    .forUpdate()
    .execute();
}

export async function insertMethod(db: Db, method: PaymentMethod): Promise<boolean> {
  const inserted = await db
    .insertInto("payment_methods")
    .values({
      id: method.id,
      tenant_id: method.tenantId,
      mode: method.mode,
      customer_id: method.customerId,
      provider: method.provider,
      provider_payment_method_id: method.providerPaymentMethodId,
      provider_customer_id: method.providerCustomerId,
      is_default: method.isDefault,
      created_at: method.createdAt,
    })
    .onConflict((conflict) =>
      conflict
        .columns(["tenant_id", "mode", "customer_id", "provider", "provider_payment_method_id"])
        .where("removed_at", "is", null)
        .doNothing(),
    )
    .returning("id")
    .executeTakeFirst();
  return inserted !== undefined;
}

export async function clearDefault(db: Db, scope: TenantScope, customerId: string): Promise<void> {
  await db
    .updateTable("payment_methods")
    .set({ is_default: false })
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("customer_id", "=", customerId)
    .where("is_default", "=", true)
    .execute();
}

export async function listMethods(db: Db, scope: TenantScope, customerId: string): Promise<PaymentMethod[]> {
  const rows = await db
    .selectFrom("payment_methods")
    .selectAll()
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("customer_id", "=", customerId)
    .where("removed_at", "is", null)
    .orderBy("id", "desc")
    .execute();
  return rows.map(fromMethodRow);
}

export async function findMethod(db: Db, scope: TenantScope, id: string): Promise<PaymentMethod | undefined> {
  const row = await db
    .selectFrom("payment_methods")
    .selectAll()
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("id", "=", id)
    .executeTakeFirst();
  return row && fromMethodRow(row);
}

export async function defaultMethod(
  db: Db,
  scope: TenantScope,
  customerId: string,
): Promise<PaymentMethod | undefined> {
  const row = await db
    .selectFrom("payment_methods")
    .selectAll()
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("customer_id", "=", customerId)
    .where("is_default", "=", true)
    .where("removed_at", "is", null)
    .executeTakeFirst();
  return row && fromMethodRow(row);
}

/** The customers among `customerIds` with a default payment method (defaultMethod, many at once). */
export async function customersWithDefaultMethod(
  db: Db,
  scope: TenantScope,
  customerIds: readonly string[],
): Promise<Set<string>> {
  if (customerIds.length === 0) return new Set();
  const rows = await db
    .selectFrom("payment_methods")
    .select("customer_id")
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("customer_id", "in", [...new Set(customerIds)])
    .where("is_default", "=", true)
    .where("removed_at", "is", null)
    .execute();
  return new Set(rows.map((row) => row.customer_id));
}

export async function removeMethod(db: Db, scope: TenantScope, id: string, now: Date): Promise<void> {
  await db
    .updateTable("payment_methods")
    .set({ removed_at: now, is_default: false })
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("id", "=", id)
    .execute();
}

// ---- Payments -----------------------------------------------------------------------------------

export function fromPaymentRow(row: Selectable<PaymentsTable>): Payment {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    mode: row.mode,
    customerId: row.customer_id,
    invoiceId: row.invoice_id,
    topUpRequestId: row.top_up_request_id,
    dunningCycleId: row.dunning_cycle_id,
    paymentMethodId: row.payment_method_id,
    provider: row.provider as ProviderName,
    amount: BigInt(row.amount),
    currency: row.currency,
    status: row.status as PaymentStatus,
    providerPaymentId: row.provider_payment_id,
    failureCode: row.failure_code,
    failureMessage: row.failure_message,
    attempt: row.attempt,
    trigger: row.trigger as PaymentTrigger,
    idempotencyKey: row.idempotency_key,
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
}

export async function insertPayment(db: Db, payment: Payment): Promise<void> {
  await db
    .insertInto("payments")
    .values({
      id: payment.id,
      tenant_id: payment.tenantId,
      mode: payment.mode,
      customer_id: payment.customerId,
      invoice_id: payment.invoiceId,
      top_up_request_id: payment.topUpRequestId,
      dunning_cycle_id: payment.dunningCycleId,
      payment_method_id: payment.paymentMethodId,
      provider: payment.provider,
      amount: payment.amount,
      currency: payment.currency,
      status: payment.status,
      provider_payment_id: payment.providerPaymentId,
      failure_code: payment.failureCode,
      failure_message: payment.failureMessage,
      attempt: payment.attempt,
      trigger: payment.trigger,
      idempotency_key: payment.idempotencyKey,
      created_at: payment.createdAt,
      updated_at: payment.updatedAt,
    })
    .execute();
}

/** Writes an outcome: status, the provider's id for the charge, the failure. */
export async function updatePayment(db: Db, payment: Payment): Promise<void> {
  await db
    .updateTable("payments")
    .set({
      status: payment.status,
      provider_payment_id: payment.providerPaymentId,
      failure_code: payment.failureCode,
      failure_message: payment.failureMessage,
      updated_at: payment.updatedAt,
    })
    .where("tenant_id", "=", payment.tenantId)
    .where("mode", "=", payment.mode)
    .where("id", "=", payment.id)
    .execute();
}

export async function findPayment(
  db: Db,
  scope: TenantScope,
  id: string,
  options: { forUpdate?: boolean } = {},
): Promise<Payment | undefined> {
  let query = db
    .selectFrom("payments")
    .selectAll()
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("id", "=", id);
  if (options.forUpdate) query = query.forUpdate();
  const row = await query.executeTakeFirst();
  return row && fromPaymentRow(row);
}

export interface PaymentFilter {
  invoiceId?: string | undefined;
  customerId?: string | undefined;
  topUpRequestId?: string | undefined;
  status?: PaymentStatus | undefined;
}

export async function listPayments(
  db: Db,
  scope: TenantScope,
  filter: PaymentFilter,
  page: PageRequest,
): Promise<Page<Payment>> {
  let query = db
    .selectFrom("payments")
    .selectAll()
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode);
  if (filter.invoiceId) query = query.where("invoice_id", "=", filter.invoiceId);
  if (filter.customerId) query = query.where("customer_id", "=", filter.customerId);
  if (filter.topUpRequestId) query = query.where("top_up_request_id", "=", filter.topUpRequestId);
  if (filter.status) query = query.where("status", "=", filter.status);
  const rows = await fetchPage(query, "id", page);
  return { data: rows.data.map(fromPaymentRow), has_more: rows.has_more };
}

type Target = { invoiceId: string } | { topUpRequestId: string };

/** The payments of one invoice or top-up request, oldest first. */
export async function paymentsFor(db: Db, scope: TenantScope, target: Target): Promise<Payment[]> {
  let query = db
    .selectFrom("payments")
    .selectAll()
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode);
  query =
    "invoiceId" in target
      ? query.where("invoice_id", "=", target.invoiceId)
      : query.where("top_up_request_id", "=", target.topUpRequestId);
  const rows = await query.orderBy("id", "asc").execute();
  return rows.map(fromPaymentRow);
}

/** PENDING payments untouched since `before`, in every tenant: their charge is resumed. */
export async function stalePayments(db: Db, before: Date, limit: number): Promise<Scoped<string>[]> {
  const rows = await db
    .selectFrom("payments")
    .select(["tenant_id", "mode", "id"])
    .where("status", "=", "PENDING")
    .where("updated_at", "<=", before)
    .orderBy("updated_at")
    .limit(limit)
    .execute();
  return rows.map((row) => scoped(row.tenant_id, row.mode, row.id));
}

// ---- Dunning cycles -----------------------------------------------------------------------------

export function fromCycleRow(row: Selectable<DunningCyclesTable>): DunningCycle {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    mode: row.mode,
    invoiceId: row.invoice_id,
    subscriptionId: row.subscription_id,
    customerId: row.customer_id,
    status: row.status as DunningStatus,
    scheduleDays: row.schedule_days,
    attempts: row.attempts,
    nextAttemptAt: row.next_attempt_at && new Date(row.next_attempt_at),
    lastFailureCode: row.last_failure_code,
    lastFailureMessage: row.last_failure_message,
    subscriptionSynced: row.subscription_synced,
    startedAt: new Date(row.started_at),
    endedAt: row.ended_at && new Date(row.ended_at),
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
}

/** Starts a cycle unless the invoice has one; true when this call started it. */
export async function insertCycle(db: Db, cycle: DunningCycle): Promise<boolean> {
  const inserted = await db
    .insertInto("dunning_cycles")
    .values({
      id: cycle.id,
      tenant_id: cycle.tenantId,
      mode: cycle.mode,
      invoice_id: cycle.invoiceId,
      subscription_id: cycle.subscriptionId,
      customer_id: cycle.customerId,
      status: cycle.status,
      schedule_days: JSON.stringify(cycle.scheduleDays),
      attempts: cycle.attempts,
      next_attempt_at: cycle.nextAttemptAt,
      subscription_synced: cycle.subscriptionSynced,
      started_at: cycle.startedAt,
      created_at: cycle.createdAt,
      updated_at: cycle.updatedAt,
    })
    .onConflict((conflict) => conflict.column("invoice_id").doNothing())
    .returning("id")
    .executeTakeFirst();
  return inserted !== undefined;
}

export async function updateCycle(db: Db, cycle: DunningCycle): Promise<void> {
  await db
    .updateTable("dunning_cycles")
    .set({
      status: cycle.status,
      attempts: cycle.attempts,
      next_attempt_at: cycle.nextAttemptAt,
      last_failure_code: cycle.lastFailureCode,
      last_failure_message: cycle.lastFailureMessage,
      subscription_synced: cycle.subscriptionSynced,
      ended_at: cycle.endedAt,
      updated_at: cycle.updatedAt,
    })
    .where("tenant_id", "=", cycle.tenantId)
    .where("mode", "=", cycle.mode)
    .where("id", "=", cycle.id)
    .execute();
}

export async function findCycle(
  db: Db,
  scope: TenantScope,
  by: { id: string } | { invoiceId: string },
  options: { forUpdate?: boolean } = {},
): Promise<DunningCycle | undefined> {
  let query = db
    .selectFrom("dunning_cycles")
    .selectAll()
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode);
  query = "id" in by ? query.where("id", "=", by.id) : query.where("invoice_id", "=", by.invoiceId);
  if (options.forUpdate) query = query.forUpdate();
  const row = await query.executeTakeFirst();
  return row && fromCycleRow(row);
}

export interface CycleFilter {
  invoiceId?: string | undefined;
  subscriptionId?: string | undefined;
  customerId?: string | undefined;
  status?: DunningStatus | undefined;
}

export async function listCycles(
  db: Db,
  scope: TenantScope,
  filter: CycleFilter,
  page: PageRequest,
): Promise<Page<DunningCycle>> {
  let query = db
    .selectFrom("dunning_cycles")
    .selectAll()
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode);
  if (filter.invoiceId) query = query.where("invoice_id", "=", filter.invoiceId);
  if (filter.subscriptionId) query = query.where("subscription_id", "=", filter.subscriptionId);
  if (filter.customerId) query = query.where("customer_id", "=", filter.customerId);
  if (filter.status) query = query.where("status", "=", filter.status);
  const rows = await fetchPage(query, "id", page);
  return { data: rows.data.map(fromCycleRow), has_more: rows.has_more };
}

export async function cyclesOfSubscription(
  db: Db,
  scope: TenantScope,
  subscriptionId: string,
): Promise<DunningCycle[]> {
  const rows = await db
    .selectFrom("dunning_cycles")
    .selectAll()
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("subscription_id", "=", subscriptionId)
    .execute();
  return rows.map(fromCycleRow);
}

/** Marks the cycles synced, each only if it still has the status and attempts the sync used. */
export async function markSynced(db: Db, cycles: readonly DunningCycle[]): Promise<void> {
  for (const cycle of cycles) {
    if (cycle.subscriptionSynced) continue;
    await db
      .updateTable("dunning_cycles")
      .set({ subscription_synced: true })
      .where("tenant_id", "=", cycle.tenantId)
      .where("mode", "=", cycle.mode)
      .where("id", "=", cycle.id)
      .where("status", "=", cycle.status)
      .where("attempts", "=", cycle.attempts)
      .execute();
  }
}

/** ACTIVE cycles whose next attempt is due, in every tenant. */
export async function dueCycles(db: Db, now: Date, limit: number): Promise<Scoped<string>[]> {
  const rows = await db
    .selectFrom("dunning_cycles")
    .select(["tenant_id", "mode", "id"])
    .where("status", "=", "ACTIVE")
    .where("next_attempt_at", "<=", now)
    .orderBy("next_attempt_at")
    .limit(limit)
    .execute();
  return rows.map((row) => scoped(row.tenant_id, row.mode, row.id));
}

/** Subscriptions with a cycle the subscription may not reflect yet, in every tenant. */
export async function unsyncedSubscriptions(db: Db, limit: number): Promise<Scoped<string>[]> {
  const rows = await db
    .selectFrom("dunning_cycles")
    .select(["tenant_id", "mode", "subscription_id"])
    .distinct()
    .where("subscription_synced", "=", false)
    .limit(limit)
    .execute();
  return rows.map((row) => scoped(row.tenant_id, row.mode, row.subscription_id));
}

/** Open cycles whose invoice was settled or voided some other way (a credit note, a void). */
export async function settledElsewhere(
  db: Db,
  limit: number,
): Promise<Scoped<{ id: string; invoiceStatus: string }>[]> {
  const rows = await db
    .selectFrom("dunning_cycles")
    .innerJoin("invoices", "invoices.id", "dunning_cycles.invoice_id")
    .select(["dunning_cycles.tenant_id", "dunning_cycles.mode", "dunning_cycles.id", "invoices.status"])
    .where("dunning_cycles.status", "in", ["ACTIVE", "EXHAUSTED"])
    .where("invoices.status", "in", ["PAID", "VOID"])
    .limit(limit)
    .execute();
  return rows.map((row) => scoped(row.tenant_id, row.mode, { id: row.id, invoiceStatus: row.status }));
}

/**
 * Invoices to start collecting: sent, something due, no cycle yet, a default payment method saved
 * for the customer, and automatic collection on. Driven from the (few) default methods.
 */
export async function collectableInvoices(db: Db, limit: number): Promise<Scoped<string>[]> {
  const rows = await db
    .selectFrom("payment_methods")
    .innerJoin("invoices", (join) =>
      join
        .onRef("invoices.tenant_id", "=", "payment_methods.tenant_id")
        .onRef("invoices.mode", "=", "payment_methods.mode")
        .onRef("invoices.customer_id", "=", "payment_methods.customer_id"),
    )
    .select(["invoices.tenant_id", "invoices.mode", "invoices.id"])
    .leftJoin("payment_settings", (join) =>
      join
        .onRef("payment_settings.tenant_id", "=", "payment_methods.tenant_id")
        .onRef("payment_settings.mode", "=", "payment_methods.mode"),
    )
    .where("payment_methods.is_default", "=", true)
    .where("payment_methods.removed_at", "is", null)
    .where(sql<boolean>`coalesce(payment_settings.automatic_collection, true)`)
    .where("invoices.status", "in", ["OPEN", "OVERDUE"])
    .where(sql<boolean>`invoices.amount_due > invoices.amount_paid`)
    .where((eb) =>
      eb.not(
        eb.exists(
          eb
            .selectFrom("dunning_cycles")
            .select("dunning_cycles.id")
            .whereRef("dunning_cycles.invoice_id", "=", "invoices.id"),
        ),
      ),
    )
    .orderBy("invoices.id")
    .limit(limit)
    .execute();
  return rows.map((row) => scoped(row.tenant_id, row.mode, row.id));
}

/** Whether the customer's invoices are collected automatically: a default method, collection on. */
export async function collectsAutomatically(
  db: Db,
  scope: TenantScope,
  customerId: string,
): Promise<boolean> {
  const row = await db
    .selectFrom("payment_methods")
    .leftJoin("payment_settings", (join) =>
      join
        .onRef("payment_settings.tenant_id", "=", "payment_methods.tenant_id")
        .onRef("payment_settings.mode", "=", "payment_methods.mode"),
    )
    .select("payment_methods.id")
    .where("payment_methods.tenant_id", "=", scope.tenantId)
    .where("payment_methods.mode", "=", scope.mode)
    .where("payment_methods.customer_id", "=", customerId)
    .where("payment_methods.is_default", "=", true)
    .where("payment_methods.removed_at", "is", null)
    .where(sql<boolean>`coalesce(payment_settings.automatic_collection, true)`)
    .executeTakeFirst();
  return row !== undefined;
}

// ---- Top-up requests (the wallets module records them; payments collect them) -------------------

export interface PendingTopUp {
  id: string;
  walletId: string;
  customerId: string;
  currency: string;
  amount: bigint;
  bucket: string;
  status: string;
}

/** PENDING top-up requests in every tenant, oldest first. */
export async function pendingTopUps(db: Db, limit: number): Promise<Scoped<string>[]> {
  const rows = await db
    .selectFrom("top_up_requests")
    .select(["tenant_id", "mode", "id"])
    .where("status", "=", "PENDING")
    .orderBy("created_at")
    .limit(limit)
    .execute();
  return rows.map((row) => scoped(row.tenant_id, row.mode, row.id));
}

export async function findTopUp(
  db: Db,
  scope: TenantScope,
  id: string,
  options: { forUpdate?: boolean } = {},
): Promise<PendingTopUp | undefined> {
  let query = db
    .selectFrom("top_up_requests")
    .innerJoin("wallets", "wallets.id", "top_up_requests.wallet_id")
    .select([
      "top_up_requests.id",
      "top_up_requests.wallet_id",
      "top_up_requests.amount",
      "top_up_requests.bucket",
      "top_up_requests.status",
      "wallets.customer_id",
      "wallets.currency",
    ])
    .where("top_up_requests.tenant_id", "=", scope.tenantId)
    .where("top_up_requests.mode", "=", scope.mode)
    .where("top_up_requests.id", "=", id);
  if (options.forUpdate) query = query.forUpdate(["top_up_requests"]);
  const row = await query.executeTakeFirst();
  return (
    row && {
      id: row.id,
      walletId: row.wallet_id,
      customerId: row.customer_id,
      currency: row.currency,
      amount: BigInt(row.amount),
      bucket: row.bucket,
      status: row.status,
    }
  );
}

/** Moves a PENDING request to its outcome; a request already decided keeps its status. */
export async function decideTopUp(
  db: Db,
  scope: TenantScope,
  id: string,
  status: "SUCCEEDED" | "FAILED",
): Promise<void> {
  await db
    .updateTable("top_up_requests")
    .set({ status })
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("id", "=", id)
    .where("status", "=", "PENDING")
    .execute();
}
