import type { Kysely, Selectable } from "kysely";
import type { Database, Mode } from "../../db/schema.ts";
import type { TenantScope } from "../../http/route-config.ts";
import type { EscrowConfig } from "../pricing/domain/offering.ts";
import type { Bucket } from "./domain.ts";
import type { PeriodDebits } from "./prepaid.ts";
import type { PrepaidUsageTable } from "./tables.ts";

type Db = Kysely<Database>;

export interface PrepaidPeriodKey {
  subscriptionId: string;
  periodStart: Date;
  periodEnd: Date;
  customerId: string;
  currency: string;
}

export interface PrepaidPeriod extends PeriodDebits {
  tenantId: string;
  mode: Mode;
  subscriptionId: string;
  periodStart: Date;
  periodEnd: Date;
  customerId: string;
  currency: string;
  walletId: string | null;
  /** The invoice that settled the period; no metered debit follows it. */
  invoiceId: string | null;
}

function fromDb(row: Selectable<PrepaidUsageTable>): PrepaidPeriod {
  return {
    tenantId: row.tenant_id,
    mode: row.mode,
    subscriptionId: row.subscription_id,
    periodStart: new Date(row.period_start),
    periodEnd: new Date(row.period_end),
    customerId: row.customer_id,
    currency: row.currency,
    walletId: row.wallet_id,
    usageMinor: row.usage_minor,
    debitedMinor: row.debited_minor,
    byBucket: { PROMOTIONAL: row.debited_promotional, BONUS: row.debited_bonus, CASH: row.debited_cash },
    invoiceId: row.invoice_id,
  };
}

export async function findPeriod(
  db: Db,
  scope: TenantScope,
  subscriptionId: string,
  periodStart: Date,
): Promise<PrepaidPeriod | undefined> {
  const row = await db
    .selectFrom("prepaid_usage")
    .selectAll()
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("subscription_id", "=", subscriptionId)
    .where("period_start", "=", periodStart)
    .executeTakeFirst();
  return row && fromDb(row);
}

/**
 * The period's row, created empty if missing, locked until the transaction ends. Callers that
 * also move money lock the wallet first (the order every movement takes).
 */
export async function lockPeriod(
  trx: Db,
  scope: TenantScope,
  key: PrepaidPeriodKey,
  walletId: string | null,
  now: Date,
): Promise<PrepaidPeriod> {
  await trx
    .insertInto("prepaid_usage")
    .values({
      tenant_id: scope.tenantId,
      mode: scope.mode,
      subscription_id: key.subscriptionId,
      period_start: key.periodStart,
      period_end: key.periodEnd,
      customer_id: key.customerId,
      currency: key.currency,
      wallet_id: walletId,
      created_at: now,
      updated_at: now,
    })
    .onConflict((oc) => oc.columns(["tenant_id", "mode", "subscription_id", "period_start"]).doNothing())
    .execute();
  const row = await trx
    .selectFrom("prepaid_usage")
    .selectAll()
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("subscription_id", "=", key.subscriptionId)
    .where("period_start", "=", key.periodStart)
    .forUpdate()
    .executeTakeFirst();
  if (!row) throw new Error("a prepaid usage row just upserted must be found");
  return fromDb(row);
}

/** Records a metered debit (`debited` by bucket) and the charge it was made for. */
export async function recordDebit(
  trx: Db,
  scope: TenantScope,
  period: PrepaidPeriod,
  change: { usageMinor: bigint; walletId: string; debited: { bucket: Bucket; amount: bigint }[]; now: Date },
): Promise<void> {
  const byBucket = { ...period.byBucket };
  for (const part of change.debited) byBucket[part.bucket] += part.amount;
  await trx
    .updateTable("prepaid_usage")
    .set({
      usage_minor: change.usageMinor,
      wallet_id: change.walletId,
      debited_minor: byBucket.PROMOTIONAL + byBucket.BONUS + byBucket.CASH,
      debited_promotional: byBucket.PROMOTIONAL,
      debited_bonus: byBucket.BONUS,
      debited_cash: byBucket.CASH,
      updated_at: change.now,
    })
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("subscription_id", "=", period.subscriptionId)
    .where("period_start", "=", period.periodStart)
    .execute();
}

/** The invoice settled the period: metered debits stop here. */
export async function markSettled(
  trx: Db,
  scope: TenantScope,
  period: PrepaidPeriod,
  invoiceId: string,
  now: Date,
): Promise<void> {
  await trx
    .updateTable("prepaid_usage")
    .set({ invoice_id: invoiceId, settled_at: now, updated_at: now })
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("subscription_id", "=", period.subscriptionId)
    .where("period_start", "=", period.periodStart)
    .execute();
}

/**
 * Subscriptions that have not ended on a PREPAID or HYBRID offering, in every tenant: what a
 * restart re-rates, so usage committed just before a crash is debited all the same.
 */
export async function prepaidSubscriptions(
  db: Db,
): Promise<{ tenantId: string; mode: Mode; subscriptionId: string; offeringId: string }[]> {
  const rows = await db
    .selectFrom("subscriptions")
    .innerJoin("offerings", "offerings.id", "subscriptions.offering_id")
    .select([
      "subscriptions.tenant_id",
      "subscriptions.mode",
      "subscriptions.id",
      "subscriptions.offering_id",
    ])
    .where("offerings.billing_mode", "in", ["PREPAID", "HYBRID"])
    .where("subscriptions.status", "not in", ["EXPIRED", "CANCELLED"])
    .execute();
  return rows.map((row) => ({
    tenantId: row.tenant_id,
    mode: row.mode,
    subscriptionId: row.id,
    offeringId: row.offering_id,
  }));
}

/** Periods with metered debits whose invoice has not settled them yet (re-rated on restart too). */
export async function unsettledPeriods(db: Db): Promise<
  {
    tenantId: string;
    mode: Mode;
    subscriptionId: string;
    customerId: string;
    periodStart: Date;
    periodEnd: Date;
  }[]
> {
  const rows = await db
    .selectFrom("prepaid_usage")
    .select(["tenant_id", "mode", "subscription_id", "customer_id", "period_start", "period_end"])
    .where("invoice_id", "is", null)
    .execute();
  return rows.map((row) => ({
    tenantId: row.tenant_id,
    mode: row.mode,
    subscriptionId: row.subscription_id,
    customerId: row.customer_id,
    periodStart: new Date(row.period_start),
    periodEnd: new Date(row.period_end),
  }));
}

export interface SubscriptionTerms {
  customerId: string;
  currency: string;
  offeringId: string;
  billingMode: string;
  escrow: EscrowConfig | null;
}

/**
 * How the subscription's offering bills (read with the caller's transaction: a finalisation
 * reads it under its own locks). Undefined for another tenant's or an unknown subscription.
 */
export async function subscriptionTerms(
  db: Db,
  scope: TenantScope,
  subscriptionId: string,
): Promise<SubscriptionTerms | undefined> {
  const row = await db
    .selectFrom("subscriptions")
    .innerJoin("offerings", "offerings.id", "subscriptions.offering_id")
    .select([
      "subscriptions.customer_id",
      "subscriptions.currency",
      "subscriptions.offering_id",
      "offerings.billing_mode",
      "offerings.escrow",
    ])
    .where("subscriptions.tenant_id", "=", scope.tenantId)
    .where("subscriptions.mode", "=", scope.mode)
    .where("subscriptions.id", "=", subscriptionId)
    .where("offerings.tenant_id", "=", scope.tenantId)
    .where("offerings.mode", "=", scope.mode)
    .executeTakeFirst();
  return (
    row && {
      customerId: row.customer_id,
      currency: row.currency,
      offeringId: row.offering_id,
      billingMode: row.billing_mode,
      escrow: row.escrow,
    }
  );
}
