/**
 * The seams between the billing modules, fixed first so that they can be built side by side:
 * billing entities and taxes (modules/billing-entities, modules/taxes), the invoicing pipeline
 * (modules/billing) and bill runs (modules/bill-runs).
 */
import type { Kysely } from "kysely";
import type { Database } from "../../db/schema.ts";
import type { TenantScope } from "../../http/route-config.ts";

/** The legal seller on an invoice: numbering, currency and the period time zone come from it. */
export interface BillingEntity {
  id: string;
  tenantId: string;
  mode: "live" | "test";
  /** Immutable upper-case code, e.g. "US"; invoice numbers are `<prefix>-<year>-<sequence>`. */
  code: string;
  name: string;
  legalName: string;
  baseCurrency: string;
  /** IANA zone that defines period midnights (copied onto new subscriptions; ADR 0011). */
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
  /** The next `count` numbers at once, in order and without gaps (a bill run's chunk). */
  nextInvoiceNumbers?(
    scope: TenantScope,
    entityId: string,
    issuedAt: Date,
    count: number,
    trx: Kysely<Database>,
  ): Promise<string[]>;
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
  /**
   * Invoices many subscriptions' periods at once (at most one period per subscription), with the
   * same result per period as invoicePeriod: bill runs call it per chunk when it is offered.
   * Outcomes come in the order of `requests`; a period that failed carries its error.
   */
  invoicePeriods?(
    scope: TenantScope,
    requests: readonly PeriodRequest[],
    options: { billRunId?: string },
  ): Promise<PeriodOutcome[]>;
  /**
   * invoicePeriods in two steps: read and compute now, write on `commit`, so that a bill run can
   * prepare its next chunk while the current one is written.
   */
  prepareInvoicePeriods?(
    scope: TenantScope,
    requests: readonly PeriodRequest[],
    options: { billRunId?: string },
  ): Promise<PreparedPeriods>;
}

/** A chunk read and computed, not yet written (PeriodInvoicing.prepareInvoicePeriods). */
export interface PreparedPeriods {
  /** Writes the chunk; outcomes in the order of its requests. Call once. */
  commit(): Promise<PeriodOutcome[]>;
}

export interface PeriodRequest {
  subscriptionId: string;
  period: BillingPeriod;
}

export type PeriodOutcome = { ok: true; invoiceId: string; created: boolean } | { ok: false; error: unknown };

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

/**
 * The customer's wallet as an invoice's route and settle stages see it, for subscriptions whose
 * offering bills through the wallet (PREPAID, HYBRID; ADR 0015).
 */
export interface InvoiceWalletState {
  /** What the wallet already paid of the period's usage as it was metered. */
  meteredMinor: bigint;
  /** What it can spend now. */
  availableMinor: bigint;
}

/** What the settle stage asks of the wallet: a waterfall debit and/or a give-back of metered excess. */
export interface WalletMovement {
  debitMinor: bigint;
  refundMinor: bigint;
}

/** What invoicing needs from wallets (the WalletService). */
export interface InvoiceWallets {
  /** The wallet for the invoice of the subscription's period; null when its offering is POSTPAID. */
  invoiceWallet(
    scope: TenantScope,
    subscriptionId: string,
    periodStart: Date,
  ): Promise<InvoiceWalletState | null>;
  /**
   * In the finalising transaction: locks the wallet and the period's metered debits, lets `decide`
   * (the pure route and settle stages) choose the movement, makes it with keys derived from the
   * invoice id, and closes the period to metered debits. null when the offering is POSTPAID.
   */
  settleInvoice(
    trx: Kysely<Database>,
    scope: TenantScope,
    invoice: { id: string; subscriptionId: string; periodStart: Date; periodEnd: Date },
    decide: (state: InvoiceWalletState) => WalletMovement,
  ): Promise<InvoiceWalletState | null>;
  /** After the finalising transaction committed: tells the edge whether the wallet now blocks. */
  syncEscrow(scope: TenantScope, customerId: string): Promise<void>;
}
