/**
 * The seams between the billing modules, fixed first so that they can be built side by side:
 * billing entities and taxes (modules/billing-entities, modules/taxes), the invoicing pipeline
 * (modules/billing) and bill runs (modules/bill-runs).
 */
import type { Kysely } from "kysely";
import type { Database } from "../../db/schema.ts";
import type { TenantScope } from "../../http/route-config.ts";

/** The legal seller on an invoice: numbering, currency and (later) time zone come from it. */
export interface BillingEntity {
  id: string;
  tenantId: string;
  mode: "live" | "test";
  /** Immutable upper-case code, e.g. "US"; invoice numbers are `<prefix>-<year>-<sequence>`. */
  code: string;
  name: string;
  legalName: string;
  baseCurrency: string;
  /** IANA zone that defines period midnights (periods are cut in UTC today; see ADR). */
  timezone: string;
  invoicePrefix: string;
  isDefault: boolean;
  address: Record<string, string> | null;
  taxId: string | null;
}

export interface BillingEntities {
  /** The tenant's default entity in this mode, created on first use (code "DEFAULT", USD, UTC). */
  defaultEntity(scope: TenantScope, db?: Kysely<Database>): Promise<BillingEntity>;
  get(scope: TenantScope, id: string, db?: Kysely<Database>): Promise<BillingEntity>;
  /**
   * The next invoice number of the entity, without gaps: call inside the transaction that
   * finalises the invoice; the counter row is locked until that transaction ends.
   */
  nextInvoiceNumber(
    scope: TenantScope,
    entityId: string,
    issuedAt: Date,
    trx: Kysely<Database>,
  ): Promise<string>;
}

export interface TaxContext {
  country: string | null;
  region: string | null;
  exempt: boolean;
  taxId: string | null;
}

export interface TaxableLine {
  /** The caller's id of the line (its index as a string is fine). */
  lineId: string;
  /** Amount after discounts, in minor units. */
  amountMinor: bigint;
}

export interface LineTax {
  lineId: string;
  name: string;
  jurisdiction: string;
  /** Decimal string, e.g. "19" for 19 %. */
  ratePercent: string;
  /** true: the line's amount already contains the tax (prices are tax-inclusive). */
  inclusive: boolean;
  taxMinor: bigint;
}

export interface TaxResult {
  lines: LineTax[];
  /** Tax added on top of the lines (exclusive taxes only). */
  exclusiveTaxMinor: bigint;
  /** Tax contained in the lines (inclusive taxes), for display. */
  inclusiveTaxMinor: bigint;
}

/** What an external tax service (Avalara, Stripe Tax, …) would implement. */
export interface TaxProvider {
  calculate(
    scope: TenantScope,
    context: TaxContext,
    currency: string,
    lines: TaxableLine[],
    at: Date,
  ): Promise<TaxResult>;
}

export interface BillingPeriod {
  start: Date;
  end: Date;
}

/** What bill runs need from invoicing. */
export interface PeriodInvoicing {
  /**
   * Invoices one subscription period through the whole pipeline and finalises it. Idempotent:
   * when the period is already invoiced it returns the existing invoice id with created=false.
   */
  invoicePeriod(
    scope: TenantScope,
    subscriptionId: string,
    period: BillingPeriod,
    options: { billRunId?: string },
  ): Promise<{ invoiceId: string; created: boolean }>;
}

/** Late usage of a closed period and unit, not yet adjusted (bill runs' PendingAdjustment). */
export interface PendingLateUsage {
  periodStart: Date;
  periodEnd: Date;
  billableUnitId: string;
  /** Oldest first. */
  eventIds: string[];
  eventCount: number;
  valueSum: string;
}

/** What invoicing needs from bill runs' reconciliation of late events. */
export interface LateUsage {
  /** Late usage of the subscription's periods that ended by `before`, not yet adjusted. */
  pendingAdjustments(
    scope: TenantScope,
    subscriptionId: string,
    options?: { before?: Date; db?: Kysely<Database> },
  ): Promise<PendingLateUsage[]>;
  /** Marks the events adjusted on `invoiceId` in `db`'s transaction; returns the ids newly marked. */
  markAdjusted(
    scope: TenantScope,
    eventIds: readonly string[],
    invoiceId: string,
    db?: Kysely<Database>,
  ): Promise<string[]>;
}

/** Where a final invoice closes its period to usage (bill runs' ClosedPeriods). */
export interface PeriodClosing {
  close(scope: TenantScope, customerId: string, period: BillingPeriod, unitIds: readonly string[]): void;
}
