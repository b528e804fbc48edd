import { AforoError, newId } from "@aforo/core";
import type { Kysely } from "kysely";
import type { Clock } from "../../clock.ts";
import type { DatabaseHandle } from "../../db/database.ts";
import type { Page, PageRequest } from "../../db/pagination.ts";
import type { Database } from "../../db/schema.ts";
import type { TenantScope } from "../../http/route-config.ts";
import type { Customer } from "../customers/domain.ts";
import type { CustomerService } from "../customers/service.ts";
import type { MeteringReadService } from "../metering/read-service.ts";
import type { PricingService } from "../pricing/service.ts";
import { isTerminal, subscriptionPeriodAt } from "../subscriptions/domain/lifecycle.ts";
import { pinnedBefore } from "../subscriptions/domain/phases.ts";
import type { PinnedPlan, Subscription } from "../subscriptions/domain/subscription.ts";
import type { StoredPhase, SubscriptionService } from "../subscriptions/service.ts";
import {
  noWebhooks,
  publishEach,
  type WebhookEventType,
  type WebhookPublisher,
} from "../webhooks/publisher.ts";
import { type ChunkHost, type Draft, type InvoiceReads, prepareChunk } from "./batch.ts";
import {
  amountDueAfterCredit,
  assertTransition,
  creditNoteRefusal,
  dueDate,
  type Invoice,
  type InvoiceStatus,
} from "./domain/invoice.ts";
import {
  type AdjustmentCredit,
  type AppliedPromotion,
  type LateAdjustment,
  type Period,
  type PipelineInput,
  type PipelineResult,
  type PlanChange,
  type PricedPlan,
  runPipeline,
  type UsageReading,
  usageCharge,
  usageItemsOf,
} from "./domain/pipeline/index.ts";
import { lookup } from "./domain/pipeline/types.ts";
import { renderInvoicePdf } from "./pdf.ts";
import type {
  BillingEntities,
  BillingPeriod,
  InvoiceWallets,
  LateUsage,
  PeriodClosing,
  PeriodInvoicing,
  PeriodOutcome,
  PeriodRequest,
  PreparedPeriods,
  TaxContext,
  TaxProvider,
} from "./ports.ts";
import { toApi as invoiceToApi } from "./routes/schemas.ts";
import { settleWithWallet } from "./settlement.ts";
import * as bulk from "./store/bulk.ts";
import type { CreditNote } from "./store/credit-notes.ts";
import * as creditNotes from "./store/credit-notes.ts";
import * as store from "./store/invoices.ts";
import { periodQuantity } from "./store/late-usage.ts";

export type { CreditNote } from "./store/credit-notes.ts";
export type { InvoiceFilter } from "./store/invoices.ts";

export interface BillingServiceDependencies {
  subscriptions: SubscriptionService;
  pricing: PricingService;
  customers: CustomerService;
  meteringReads: MeteringReadService;
  billingEntities: BillingEntities;
  taxes: TaxProvider;
  /** Bill runs' reconciliation: without it late events are not adjusted (they stay pending). */
  lateUsage?: LateUsage | undefined;
  /** Bill runs' closed periods: every finalised invoice closes its period to usage there. */
  closedPeriods?: PeriodClosing | undefined;
}

/** What one invoice computation produced, beyond the invoice. */
interface Computed {
  invoice: Invoice;
  carryOut: Record<string, string>;
  adjustmentCredits: AdjustmentCredit[];
  adjustedEventIds: string[];
  /** The plans the period's usage was rated with (pinned at its end). */
  plans: PricedPlan[];
}

/**
 * The late events an invoice was computed with were adjusted (or credited) meanwhile by another
 * invoice, or the original invoice can no longer take the credit: the transaction rolls back and
 * the invoice is computed again.
 */
class StaleAdjustments extends Error {}

/** How often invoicePeriod recomputes after StaleAdjustments before giving up. */
const ADJUSTMENT_ATTEMPTS = 3;

export interface PayInput {
  /** Minor units; when given it must equal what is still due. */
  amount?: bigint | undefined;
  method?: "manual" | undefined;
}

export interface CreateCreditNoteInput {
  invoiceId: string;
  amount: bigint;
  reason: string;
  description?: string | null | undefined;
}

function notFound(kind: string, id: string): AforoError {
  return new AforoError("not-found", `No ${kind} with id '${id}' exists in this tenant and mode.`);
}

function unprocessable(detail: string, field: string, message: string): AforoError {
  return new AforoError("unprocessable-entity", detail, { errors: [{ field, message }] });
}

function samePeriod(a: Period, b: Period): boolean {
  return a.start.getTime() === b.start.getTime() && a.end.getTime() === b.end.getTime();
}

function isTrialPeriod(subscription: Subscription, period: Period): boolean {
  return subscription.trialEndAt !== null && period.end.getTime() <= subscription.trialEndAt.getTime();
}

/**
 * The periods whose in-advance fees the invoice of `period` charges: the next period (the one this
 * invoice opens) unless the subscription ends with `period`, and `period` itself when it is the
 * subscription's first paid period (no earlier invoice opened it). A trial's period charges
 * nothing: bill runs never invoice it, so the first paid period (starting when the trial ends)
 * charges its own fee, as a subscription without a trial does.
 */
export function advancePeriodsFor(subscription: Subscription, period: Period): Period[] {
  const periods: Period[] = [];
  if (isTrialPeriod(subscription, period)) return periods;
  const firstPaidStart = subscription.trialEndAt ?? subscription.startAt;
  if (period.start.getTime() <= firstPaidStart.getTime()) periods.push(period);
  const endsAt = subscription.endedAt ?? subscription.cancelAt ?? null;
  if (endsAt === null || endsAt.getTime() > period.end.getTime()) {
    periods.push(subscriptionPeriodAt(subscription, period.end));
  }
  return periods;
}

function taxContextOf(customer: Customer): TaxContext {
  if (customer.tax) {
    return {
      country: customer.tax.country,
      region: customer.tax.region,
      exempt: customer.tax.exempt,
      taxId: customer.tax.taxId,
    };
  }
  return {
    country: customer.address?.country ?? null,
    region: customer.address?.state ?? null,
    exempt: false,
    taxId: null,
  };
}

/** Webhook events of #transition's moves (PAID is announced by payments). */
const transitionEvents: Partial<Record<InvoiceStatus, WebhookEventType>> = {
  VOID: "invoice.voided",
  UNCOLLECTIBLE: "invoice.marked_uncollectible",
};

/**
 * Invoicing: runs the ten-stage pipeline (domain/pipeline) for a subscription period, stores the
 * invoice and moves it through its states. Every action is setup (read the subscription, plans,
 * usage, carry-over, promotion, customer) → compute (the pure pipeline) → execute (one
 * transaction). The preview runs the same setup and compute and stores nothing.
 */
export class BillingService implements PeriodInvoicing {
  readonly #database: DatabaseHandle;
  readonly #clock: Clock;
  readonly #deps: BillingServiceDependencies;
  /**
   * Set by the context (wallets are built later): PREPAID and HYBRID invoices are paid from the
   * wallet first by the route and settle stages (ADR 0015). Unset: every invoice is POSTPAID.
   */
  wallets: InvoiceWallets | undefined;
  /** invoice.created|finalized|voided|marked_uncollectible, in the change's transaction (set by the context). */
  webhooks: WebhookPublisher = noWebhooks;

  /** What #compute reads, one period at a time (a bill run's chunk reads the same set-wise: batch.ts). */
  readonly #live: InvoiceReads;

  constructor(database: DatabaseHandle, clock: Clock, dependencies: BillingServiceDependencies) {
    this.#database = database;
    this.#clock = clock;
    this.#deps = dependencies;
    const { subscriptions, customers, meteringReads } = dependencies;
    this.#live = {
      subscription: (scope, id) => subscriptions.get(scope, id),
      phases: (scope, id) => subscriptions.phases(scope, id),
      customer: (scope, id) => customers.get(scope, id),
      pendingAdjustments: async (scope, id, before) =>
        (await dependencies.lateUsage?.pendingAdjustments(scope, id, { before })) ?? [],
      usage: (scope, input) => meteringReads.usage(scope, input),
      carryIn: (scope, id, start) => store.carryIn(this.#db, scope, id, start),
      wallet: async (scope, id, start) =>
        this.wallets ? this.wallets.invoiceWallet(scope, id, start) : null,
    };
  }

  get #db(): Kysely<Database> {
    return this.#database.db;
  }

  // ---- Running the pipeline -----------------------------------------------------------------

  /**
   * Invoices one ended period and finalises it (OPEN, numbered); idempotent per period. Late usage
   * of earlier, closed periods is adjusted on it: the events are marked adjusted (and negative
   * adjustments credited) in the invoice's own transaction, so a crash or a retry cannot bill them
   * twice, and a concurrent invoice that took them first makes this one recompute without them.
   */
  async invoicePeriod(
    scope: TenantScope,
    subscriptionId: string,
    period: BillingPeriod,
    options: { billRunId?: string },
  ): Promise<{ invoiceId: string; created: boolean }> {
    for (let attempt = 1; ; attempt += 1) {
      const existing = await store.findInvoiceIdForPeriod(this.#db, scope, subscriptionId, period.start);
      if (existing) return this.#finalizeExistingDraft(scope, existing);
      const computed = await this.#compute(scope, subscriptionId, period, period.end, options.billRunId, {
        adjust: true,
      });
      try {
        const stored = await this.#db.transaction().execute(async (trx) => {
          const result = await this.#storeDraft(trx, scope, computed.invoice, computed.carryOut);
          if (result.created) {
            await this.#applyAdjustments(trx, scope, computed);
            await this.#finalizeIn(trx, scope, computed.invoice);
          }
          return result;
        });
        if (!stored.created) return this.#finalizeExistingDraft(scope, stored.invoiceId);
        await this.#closePeriod(scope, computed.invoice);
        return stored;
      } catch (error) {
        if (!(error instanceof StaleAdjustments) || attempt >= ADJUSTMENT_ATTEMPTS) throw error;
      }
    }
  }

  /**
   * Many subscriptions' periods at once (a bill run's chunk, at most one period per subscription):
   * the invoices invoicePeriod makes, read in a few statements per chunk and written in one
   * transaction (batch.ts).
   */
  async invoicePeriods(
    scope: TenantScope,
    requests: readonly PeriodRequest[],
    options: { billRunId?: string },
  ): Promise<PeriodOutcome[]> {
    return (await this.prepareInvoicePeriods(scope, requests, options)).commit();
  }

  /** invoicePeriods' reads and computations now, its writes on `commit` (batch.ts). */
  prepareInvoicePeriods(
    scope: TenantScope,
    requests: readonly PeriodRequest[],
    options: { billRunId?: string },
  ): Promise<PreparedPeriods> {
    const host: ChunkHost = {
      database: this.#database,
      clock: this.#clock,
      meteringReads: this.#deps.meteringReads,
      live: this.#live,
      walletsWired: this.wallets !== undefined,
      compute: (scope, subscriptionId, period, billRunId, reads) =>
        this.#compute(scope, subscriptionId, period, period.end, billRunId, { adjust: true }, reads),
      storeDrafts: (trx, scope, drafts) => this.#storeDrafts(trx, scope, drafts),
      finalizeMany: (trx, scope, invoices, postpaid) => this.#finalizeMany(trx, scope, invoices, postpaid),
      closePeriod: (scope, invoice, plans) => this.#closePeriod(scope, invoice, plans),
      finalizeExisting: (scope, id) => this.#finalizeExistingDraft(scope, id),
      invoicePeriod: (scope, subscriptionId, period, options) =>
        this.invoicePeriod(scope, subscriptionId, period, options),
    };
    return prepareChunk(host, scope, requests, options);
  }

  /**
   * In the invoice's transaction: checks that the late events it adjusts are still pending, issues
   * the credit notes of negative adjustments, and marks the events adjusted on the invoice. Any
   * event another invoice took meanwhile throws StaleAdjustments (the transaction rolls back).
   */
  async #applyAdjustments(trx: Kysely<Database>, scope: TenantScope, computed: Computed): Promise<void> {
    const { invoice, adjustedEventIds, adjustmentCredits } = computed;
    const lateUsage = this.#deps.lateUsage;
    if (!lateUsage || adjustedEventIds.length === 0) return;
    const pending = await lateUsage.pendingAdjustments(scope, invoice.subscriptionId, {
      before: invoice.periodStart,
      db: trx,
    });
    const pendingIds = new Set(pending.flatMap((group) => group.eventIds));
    if (adjustedEventIds.some((id) => !pendingIds.has(id))) throw new StaleAdjustments();
    for (const credit of adjustmentCredits) {
      const original = await store.findInvoice(trx, scope, credit.invoiceId, { forUpdate: true });
      if (!original || creditNoteRefusal(original, credit.amountMinor)) throw new StaleAdjustments();
      await this.#issueCreditNote(trx, scope, original, {
        invoiceId: original.id,
        amount: credit.amountMinor,
        reason: "late_usage_adjustment",
        description: `${credit.description} (adjusted on invoice ${invoice.id})`,
      });
    }
    const marked = await lateUsage.markAdjusted(scope, adjustedEventIds, invoice.id, trx);
    if (marked.length !== adjustedEventIds.length) throw new StaleAdjustments();
  }

  /**
   * After commit: the finalised invoice's period is closed to usage, so an event that arrives for
   * it now is kept for reconciliation and adjusted on the next invoice (bill runs also record the
   * period in billed_periods, which reloads the closed periods on restart).
   */
  async #closePeriod(
    scope: TenantScope,
    invoice: Pick<Invoice, "subscriptionId" | "customerId" | "periodStart" | "periodEnd">,
    plans?: PricedPlan[],
  ): Promise<void> {
    // The settlement may have emptied (or refilled) a prepaid wallet: the edge hears it now.
    await this.wallets?.syncEscrow(scope, invoice.customerId);
    const closedPeriods = this.#deps.closedPeriods;
    if (!closedPeriods) return;
    const period = { start: invoice.periodStart, end: invoice.periodEnd };
    const priced = plans ?? (await this.#plansAt(scope, invoice.subscriptionId, period.end));
    const unitIds = new Set<string>();
    for (const { item } of usageItemsOf(priced)) {
      const unitId = this.#unitIdOf(scope, item);
      if (unitId) unitIds.add(unitId);
    }
    closedPeriods.close(scope, invoice.customerId, period, [...unitIds]);
  }

  #unitIdOf(scope: TenantScope, item: PricedPlan["items"][number]): string | undefined {
    if (item.billable_unit_id) return item.billable_unit_id;
    if (item.model === "FLAT_RATE") return undefined;
    return this.#deps.meteringReads.resolveUnit(scope, item.billable_unit)?.id;
  }

  async #plansAt(scope: TenantScope, subscriptionId: string, at: Date): Promise<PricedPlan[]> {
    const subscription = await this.#deps.subscriptions.get(scope, subscriptionId);
    const phases = await this.#deps.subscriptions.phases(scope, subscriptionId);
    return this.#plansOf(scope, pinnedBefore(phases, at) ?? subscription.items);
  }

  /** A period drafted earlier (draftPeriod) is finalised by the run; any other state is left alone. */
  async #finalizeExistingDraft(
    scope: TenantScope,
    id: string,
  ): Promise<{ invoiceId: string; created: boolean }> {
    const invoice = await this.#act(scope, id, async (trx, invoice) =>
      invoice.status === "DRAFT" ? this.#finalizeIn(trx, scope, invoice) : invoice,
    );
    if (invoice.status !== "VOID") await this.#closePeriod(scope, invoice);
    return { invoiceId: id, created: false };
  }

  /**
   * Writes a period's DRAFT without finalising it (POST /v1/invoices/{id}/finalize numbers it).
   * Idempotent like invoicePeriod: an invoiced period returns its existing invoice. A draft adjusts
   * no late events (a draft may still be voided): they stay pending for the next invoicePeriod.
   */
  async draftPeriod(
    scope: TenantScope,
    subscriptionId: string,
    period: BillingPeriod,
    options: { billRunId?: string } = {},
  ): Promise<{ invoiceId: string; created: boolean }> {
    const existing = await store.findInvoiceIdForPeriod(this.#db, scope, subscriptionId, period.start);
    if (existing) return { invoiceId: existing, created: false };
    const { invoice, carryOut } = await this.#compute(
      scope,
      subscriptionId,
      period,
      period.end,
      options.billRunId,
      { adjust: false },
    );
    return this.#db.transaction().execute((trx) => this.#storeDraft(trx, scope, invoice, carryOut));
  }

  /**
   * The invoice the subscription's current period would produce now: the same pipeline over the
   * usage so far. Nothing is stored; `id` and `number` are null, the status DRAFT.
   */
  async preview(scope: TenantScope, subscriptionId: string): Promise<Invoice> {
    const subscription = await this.#deps.subscriptions.get(scope, subscriptionId);
    if (isTerminal(subscription.status)) {
      throw new AforoError(
        "invalid-transition",
        `Subscription '${subscriptionId}' is ${subscription.status}: it has no upcoming invoice.`,
      );
    }
    const now = this.#clock.now();
    const period = subscriptionPeriodAt(subscription, now);
    // The late events the period's invoice would adjust are shown too (nothing is marked).
    const { invoice } = await this.#compute(scope, subscriptionId, period, now, undefined, { adjust: true });
    return invoice;
  }

  async #storeDraft(
    trx: Kysely<Database>,
    scope: TenantScope,
    invoice: Invoice,
    carryOut: Record<string, string>,
  ): Promise<{ invoiceId: string; created: boolean }> {
    if (!(await this.#storeDrafts(trx, scope, [{ invoice, carryOut }])).has(invoice.id)) {
      // A concurrent run invoiced the period first; the insert waited for it and did nothing.
      const id = await store.findInvoiceIdForPeriod(trx, scope, invoice.subscriptionId, invoice.periodStart);
      if (!id)
        throw new Error(
          `invoice of ${invoice.subscriptionId} at ${invoice.periodStart.toISOString()} vanished`,
        );
      return { invoiceId: id, created: false };
    }
    return { invoiceId: invoice.id, created: true };
  }

  /**
   * Inserts the drafts with their lines and carry-overs, and announces each one created; a period
   * invoiced meanwhile is left alone. Returns the ids inserted. One statement per kind of row for
   * all of them (a bill run's chunk stores hundreds at once).
   */
  async #storeDrafts(
    trx: Kysely<Database>,
    scope: TenantScope,
    drafts: readonly Draft[],
  ): Promise<Set<string>> {
    const inserted = await bulk.insertDrafts(
      trx,
      drafts.map((draft) => draft.invoice),
    );
    const created = drafts.filter((draft) => inserted.has(draft.invoice.id));
    await bulk.saveCarryOuts(
      trx,
      scope,
      created.map(({ invoice, carryOut }) => ({
        subscriptionId: invoice.subscriptionId,
        periodStart: invoice.periodEnd,
        invoiceId: invoice.id,
        quantities: carryOut,
      })),
    );
    await publishEach(
      this.webhooks,
      trx,
      scope,
      "invoice.created",
      created.map(({ invoice }) => invoiceToApi(invoice)),
    );
    return inserted;
  }

  /**
   * Setup and compute: reads everything the pipeline needs, runs it, shapes a draft invoice.
   * Plans come from the subscription's phases: usage and the next period's in-advance fees are
   * rated with the plans pinned at the end of the period (the plan the customer ends the period
   * on prices the whole period's usage: usage has no share of a period the way a flat fee has,
   * and splitting it at the change would need a second read per unit). The period's own flat fees
   * are the plans' pinned at its start, and each plan change inside it adds PRORATION lines.
   */
  async #compute(
    scope: TenantScope,
    subscriptionId: string,
    period: Period,
    asOf: Date,
    billRunId: string | undefined,
    options: { adjust: boolean },
    reads: InvoiceReads = this.#live,
  ): Promise<Computed> {
    const { taxes } = this.#deps;
    const subscription = await reads.subscription(scope, subscriptionId);
    const expected = subscriptionPeriodAt(subscription, period.start);
    if (!samePeriod(expected, period)) {
      throw unprocessable(
        `[${period.start.toISOString()}, ${period.end.toISOString()}) is not a billing period of subscription '${subscriptionId}'.`,
        "period",
        `the period starting there is [${expected.start.toISOString()}, ${expected.end.toISOString()})`,
      );
    }
    const phases = await reads.phases(scope, subscription.id);
    const plans = await this.#plansOf(scope, pinnedBefore(phases, period.end) ?? subscription.items);
    const planChanges = await this.#planChanges(scope, phases, period);
    const customer = await reads.customer(scope, subscription.customerId);
    const promotion = await this.#promotionOf(scope, subscription);
    const input: PipelineInput = {
      currency: subscription.currency,
      timeZone: subscription.timezone,
      period,
      advancePeriods: advancePeriodsFor(subscription, period),
      chargeUsage: !isTrialPeriod(subscription, period),
      plans,
      openingPlans: planChanges[0]?.from,
      planChanges,
      adjustments: options.adjust
        ? await this.#lateAdjustments(scope, subscription, phases, period, reads)
        : [],
      usage: await this.#usage(scope, subscription, plans, period, asOf, reads),
      carryIn: await reads.carryIn(scope, subscription.id, period.start),
      promotion,
      periodsAlreadyDiscounted:
        promotion === null
          ? 0
          : await store.countDiscountedPeriods(
              this.#db,
              scope,
              subscription.id,
              promotion.promotionId,
              period.start,
            ),
      taxContext: taxContextOf(customer),
      wallet: this.wallets ? await reads.wallet(scope, subscription.id, period.start) : null,
    };
    const result = await runPipeline(input, (lines) =>
      taxes.calculate(scope, input.taxContext, input.currency, lines, period.end),
    );
    return {
      invoice: this.#draftOf(scope, subscription, period, result, billRunId),
      carryOut: result.carryOut,
      adjustmentCredits: result.adjustmentCredits,
      adjustedEventIds: result.adjustedEventIds,
      plans,
    };
  }

  /** The plan changes that fell inside the period, oldest first, with the plans on either side. */
  async #planChanges(
    scope: TenantScope,
    phases: readonly StoredPhase[],
    period: Period,
  ): Promise<PlanChange[]> {
    const changes: PlanChange[] = [];
    for (const phase of phases) {
      const change = phase.planChange;
      const atMs = phase.startedAt.getTime();
      if (!change || atMs < period.start.getTime() || atMs >= period.end.getTime()) continue;
      changes.push({
        at: phase.startedAt,
        fractionRemaining: change.fractionRemaining,
        from: await this.#plansOf(scope, change.previousItems),
        to: await this.#plansOf(scope, phase.items),
      });
    }
    return changes;
  }

  /**
   * The subscription's late usage of periods that ended by this period's start, not yet adjusted,
   * with the quantities to price it: each closed period's usage as billed so far and with the late
   * events (store/late-usage.ts explains why these are recomputed from the events), the item of the
   * plan pinned at that period's end, the allowance it carried in, and whether its invoice can
   * still take a credit note.
   */
  async #lateAdjustments(
    scope: TenantScope,
    subscription: Subscription,
    phases: readonly StoredPhase[],
    period: Period,
    reads: InvoiceReads,
  ): Promise<LateAdjustment[]> {
    if (!this.#deps.lateUsage) return [];
    const groups = await reads.pendingAdjustments(scope, subscription.id, period.start);
    const adjustments: LateAdjustment[] = [];
    for (const group of groups) {
      const closed = { start: group.periodStart, end: group.periodEnd };
      const plans = await this.#plansOf(scope, pinnedBefore(phases, closed.end) ?? subscription.items);
      const unit = this.#deps.meteringReads.resolveUnit(scope, group.billableUnitId);
      const priced =
        usageItemsOf(plans).find(({ item }) => this.#unitIdOf(scope, item) === group.billableUnitId) ?? null;
      const unitKey = unit?.key ?? priced?.item.billable_unit ?? group.billableUnitId;
      const quantity = (including: readonly string[]) =>
        unit
          ? periodQuantity(this.#db, scope, {
              customerId: subscription.customerId,
              billableUnitId: group.billableUnitId,
              aggregation: unit.aggregation,
              range: { from: closed.start, to: closed.end },
              including,
            })
          : Promise.resolve("0");
      const carried = priced?.item.rollover
        ? lookup(await store.carryIn(this.#db, scope, subscription.id, closed.start), unitKey)
        : undefined;
      adjustments.push({
        period: closed,
        unitKey,
        eventIds: group.eventIds,
        priced: unit ? priced : null,
        quantityBefore: await quantity([]),
        quantityAfter: await quantity(group.eventIds),
        rolloverIn: carried,
        original: await this.#creditable(scope, subscription.id, closed.start),
      });
    }
    return adjustments;
  }

  /** The invoice of the period starting at `start`, when a credit note can still be issued on it. */
  async #creditable(
    scope: TenantScope,
    subscriptionId: string,
    start: Date,
  ): Promise<{ invoiceId: string; creditableMinor: bigint } | null> {
    const id = await store.findInvoiceIdForPeriod(this.#db, scope, subscriptionId, start);
    const invoice = id ? await store.findInvoice(this.#db, scope, id) : undefined;
    if (!invoice || creditNoteRefusal(invoice, 0n)) return null;
    return { invoiceId: invoice.id, creditableMinor: invoice.total - invoice.creditNotesTotal };
  }

  #draftOf(
    scope: TenantScope,
    subscription: Subscription,
    period: Period,
    result: PipelineResult,
    billRunId: string | undefined,
  ): Invoice {
    return {
      id: newId("invoice"),
      tenantId: scope.tenantId,
      mode: scope.mode,
      number: null,
      status: "DRAFT",
      customerId: subscription.customerId,
      subscriptionId: subscription.id,
      billingEntityId: null,
      currency: subscription.currency,
      periodStart: period.start,
      periodEnd: period.end,
      lines: result.lines,
      subtotal: result.subtotal,
      discountTotal: result.discountTotal,
      taxTotal: result.taxTotal,
      taxIncluded: result.taxIncluded,
      taxBreakdown: result.taxBreakdown,
      creditsApplied: result.creditsApplied,
      creditNotesTotal: 0n,
      total: result.total,
      amountDue: result.amountDue,
      amountPaid: 0n,
      paymentMethod: null,
      promotionId: result.promotionId,
      trace: result.trace,
      billRunId: billRunId ?? null,
      issuedAt: null,
      dueAt: null,
      finalizedAt: null,
      paidAt: null,
      voidedAt: null,
      markedUncollectibleAt: null,
      createdAt: this.#clock.now(),
    };
  }

  async #plansOf(scope: TenantScope, items: readonly PinnedPlan[]): Promise<PricedPlan[]> {
    const { pricing } = this.#deps;
    const plans: PricedPlan[] = [];
    for (const pinned of items) {
      const cached = pricing.versions.get(pinned.ratePlanId, pinned.version);
      const definition =
        cached && cached.tenantId === scope.tenantId && cached.mode === scope.mode
          ? cached.definition
          : (await pricing.getRatePlan(scope, pinned.ratePlanId, pinned.version)).definition;
      plans.push({
        ratePlanId: pinned.ratePlanId,
        version: pinned.version,
        name: definition.name,
        currency: definition.currency,
        rounding: definition.rounding,
        items: definition.items,
        minimumCommitment: definition.minimum_commitment,
        maximumSpend: definition.maximum_spend,
      });
    }
    return plans;
  }

  /** Each priced unit's usage of the customer over [period start, min(asOf, period end)). */
  async #usage(
    scope: TenantScope,
    subscription: Subscription,
    plans: PricedPlan[],
    period: Period,
    asOf: Date,
    reads: InvoiceReads = this.#live,
  ): Promise<UsageReading[]> {
    const to = new Date(Math.min(asOf.getTime(), period.end.getTime()));
    const readings: UsageReading[] = [];
    const seen = new Set<string>();
    for (const { item } of usageItemsOf(plans)) {
      if (seen.has(item.billable_unit)) continue;
      seen.add(item.billable_unit);
      if (to.getTime() <= period.start.getTime()) {
        readings.push({ unitKey: item.billable_unit, aggregation: "NONE", quantity: "0" });
        continue;
      }
      const answer = await reads.usage(scope, {
        metricRef: item.billable_unit_id ?? item.billable_unit,
        customerId: subscription.customerId,
        range: { from: period.start, to },
        window: null,
        groupBy: [],
      });
      readings.push({
        unitKey: item.billable_unit,
        aggregation: answer.unit.aggregation,
        quantity: answer.total,
      });
    }
    return readings;
  }

  async #promotionOf(scope: TenantScope, subscription: Subscription): Promise<AppliedPromotion | null> {
    const { pricing } = this.#deps;
    let promotion = null;
    if (subscription.promotionId) promotion = await pricing.getPromotion(scope, subscription.promotionId);
    else if (subscription.promotionCode)
      promotion = (await pricing.findPromotionByCode(scope, subscription.promotionCode)) ?? null;
    if (!promotion) return null;
    return {
      promotionId: promotion.id,
      code: promotion.code,
      percentOff: promotion.percentOff,
      amountOff: promotion.amountOff,
      currency: promotion.currency,
      duration: promotion.duration,
      durationInPeriods: promotion.durationInPeriods,
    };
  }

  /**
   * The usage charge of a subscription period so far, in minor units: the period's stored usage
   * rated by the invoice's own stages with the plans its invoice will use. Prepaid wallets are
   * debited the change in it as usage is metered (wallets/prepaid-usage.ts).
   */
  async usageCharge(
    scope: TenantScope,
    subscriptionId: string,
    period: Period,
  ): Promise<{ amountMinor: bigint }> {
    const { subscriptions } = this.#deps;
    const subscription =
      subscriptions.getCached(scope, subscriptionId) ?? (await subscriptions.get(scope, subscriptionId));
    const phases = await subscriptions.phases(scope, subscription.id);
    const plans = await this.#plansOf(scope, pinnedBefore(phases, period.end) ?? subscription.items);
    const charged = usageCharge({
      currency: subscription.currency,
      period,
      chargeUsage: !isTrialPeriod(subscription, period),
      plans,
      usage: await this.#usage(scope, subscription, plans, period, period.end),
      carryIn: await store.carryIn(this.#db, scope, subscription.id, period.start),
    });
    return { amountMinor: charged.amountMinor };
  }

  // ---- Reading ------------------------------------------------------------------------------

  async get(scope: TenantScope, id: string): Promise<Invoice> {
    const invoice = await store.findInvoice(this.#db, scope, id);
    if (!invoice) throw notFound("invoice", id);
    return invoice;
  }

  list(scope: TenantScope, filter: store.InvoiceFilter, page: PageRequest): Promise<Page<Invoice>> {
    return store.listInvoices(this.#db, scope, filter, page);
  }

  /** The invoice as a PDF: seller from the billing entity, buyer from the customer. */
  async pdf(scope: TenantScope, id: string, options: { compress?: boolean } = {}): Promise<Buffer> {
    const invoice = await this.get(scope, id);
    const { billingEntities, customers } = this.#deps;
    const seller = invoice.billingEntityId
      ? await billingEntities.get(scope, invoice.billingEntityId)
      : await billingEntities.defaultEntity(scope);
    const buyer = await customers.get(scope, invoice.customerId);
    return renderInvoicePdf({ invoice, seller, buyer, compress: options.compress ?? true });
  }

  // ---- State changes ------------------------------------------------------------------------

  /** DRAFT → OPEN: takes the billing entity's next number in the same transaction (no gaps). */
  async finalize(scope: TenantScope, id: string): Promise<Invoice> {
    const invoice = await this.#act(scope, id, (trx, invoice) => this.#finalizeIn(trx, scope, invoice));
    await this.#closePeriod(scope, invoice);
    return invoice;
  }

  async #finalizeIn(trx: Kysely<Database>, scope: TenantScope, invoice: Invoice): Promise<Invoice> {
    const [finalized] = await this.#finalizeMany(trx, scope, [invoice]);
    if (!finalized) throw new Error(`invoice ${invoice.id} was not finalised`);
    return finalized;
  }

  /**
   * DRAFT → OPEN for each invoice, in `trx`: each billing entity's next numbers are taken at once,
   * in the invoices' order (its counter row stays locked until commit: no gaps), the wallet
   * settles its part, and each invoice is announced. `postpaid` names subscriptions known to pay
   * nothing from a wallet (settling them would change nothing).
   */
  async #finalizeMany(
    trx: Kysely<Database>,
    scope: TenantScope,
    invoices: readonly Invoice[],
    postpaid: ReadonlySet<string> = new Set(),
  ): Promise<Invoice[]> {
    for (const invoice of invoices) assertTransition(invoice.id, invoice.status, "OPEN", "finalized");
    const { billingEntities } = this.#deps;
    const now = this.#clock.now();
    let defaultId: string | undefined;
    const entities: Array<{ invoice: Invoice; entityId: string }> = [];
    for (const invoice of invoices) {
      if (invoice.billingEntityId === null && defaultId === undefined) {
        defaultId = (await billingEntities.defaultEntity(scope, trx)).id;
      }
      const entityId = invoice.billingEntityId ?? defaultId;
      if (entityId === undefined) throw new Error(`invoice ${invoice.id} has no billing entity`);
      entities.push({ invoice, entityId });
    }
    const counts = new Map<string, number>();
    for (const { entityId } of entities) counts.set(entityId, (counts.get(entityId) ?? 0) + 1);
    const numbers = new Map<string, string[]>();
    // Counter rows are locked in one order: two chunks never wait on each other crosswise.
    for (const [entityId, count] of [...counts].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const taken: string[] = [];
      if (count > 1 && billingEntities.nextInvoiceNumbers) {
        taken.push(...(await billingEntities.nextInvoiceNumbers(scope, entityId, now, count, trx)));
      } else {
        for (let index = 0; index < count; index += 1) {
          taken.push(await billingEntities.nextInvoiceNumber(scope, entityId, now, trx));
        }
      }
      numbers.set(entityId, taken);
    }
    const finalized: Invoice[] = [];
    for (const { invoice, entityId } of entities) {
      const number = numbers.get(entityId)?.shift();
      if (number === undefined) throw new Error(`no invoice number left for ${invoice.id}`);
      const next: Invoice = {
        ...invoice,
        status: "OPEN",
        number,
        billingEntityId: entityId,
        issuedAt: now,
        finalizedAt: now,
        dueAt: dueDate(now),
      };
      // Settle: the wallet pays its part in this transaction, with the number (ADR 0015).
      finalized.push(
        postpaid.has(invoice.subscriptionId) ? next : await settleWithWallet(trx, scope, next, this.wallets),
      );
    }
    if (finalized.length === 1 && finalized[0]) await store.updateInvoiceState(trx, finalized[0]);
    else await bulk.updateInvoiceStates(trx, scope, finalized);
    await publishEach(
      this.webhooks,
      trx,
      scope,
      "invoice.finalized",
      finalized.map((invoice) => invoiceToApi(invoice)),
    );
    return finalized;
  }

  /**
   * DRAFT, OPEN or OVERDUE → VOID. A paid invoice cannot be voided (409): credit it instead. Nor can
   * one a prepaid wallet paid part of (credits applied): voiding would keep the customer's credits
   * without an invoice for them.
   */
  void(scope: TenantScope, id: string): Promise<Invoice> {
    return this.#transition(scope, id, "VOID", "voided", (invoice, now) => {
      if (invoice.creditsApplied > 0n) {
        throw new AforoError(
          "invalid-transition",
          `Invoice '${id}' was paid ${invoice.creditsApplied} minor units from the customer's wallet and cannot be voided; issue a credit note instead (or credit the wallet back).`,
        );
      }
      return { ...invoice, voidedAt: now };
    });
  }

  /** OPEN, OVERDUE or UNCOLLECTIBLE → PAID by a manual (offline) payment of what is due. */
  pay(scope: TenantScope, id: string, input: PayInput = {}): Promise<Invoice> {
    return this.#transition(scope, id, "PAID", "paid", (invoice, now) => {
      if (input.amount !== undefined && input.amount !== invoice.amountDue) {
        throw unprocessable(
          `Invoice '${id}' has ${invoice.amountDue} due; partial payments are not supported yet.`,
          "amount",
          `must equal the amount due (${invoice.amountDue})`,
        );
      }
      return {
        ...invoice,
        paidAt: now,
        amountPaid: invoice.amountDue,
        paymentMethod: input.method ?? "manual",
      };
    });
  }

  /** OPEN or OVERDUE → UNCOLLECTIBLE (a write-off candidate; a late payment still settles it). */
  markUncollectible(scope: TenantScope, id: string): Promise<Invoice> {
    return this.#transition(scope, id, "UNCOLLECTIBLE", "marked uncollectible", (invoice, now) => ({
      ...invoice,
      markedUncollectibleAt: now,
    }));
  }

  /** Moves every OPEN invoice whose due date has passed to OVERDUE; returns how many moved. */
  async markOverdue(now: Date = this.#clock.now()): Promise<number> {
    return (await store.markOverdue(this.#db, now)).length;
  }

  #transition(
    scope: TenantScope,
    id: string,
    to: InvoiceStatus,
    action: string,
    change: (invoice: Invoice, now: Date) => Invoice,
  ): Promise<Invoice> {
    return this.#act(scope, id, async (trx, invoice) => {
      assertTransition(id, invoice.status, to, action);
      const next = { ...change(invoice, this.#clock.now()), status: to };
      await store.updateInvoiceState(trx, next);
      const event = transitionEvents[to];
      if (event) await this.webhooks.publish(trx, scope, event, invoiceToApi(next));
      return next;
    });
  }

  /** Locks the invoice row for the whole action, so concurrent actions see each other's result. */
  #act(
    scope: TenantScope,
    id: string,
    action: (trx: Kysely<Database>, invoice: Invoice) => Promise<Invoice>,
  ): Promise<Invoice> {
    return this.#db.transaction().execute(async (trx) => {
      const invoice = await store.findInvoice(trx, scope, id, { forUpdate: true });
      if (!invoice) throw notFound("invoice", id);
      return action(trx, invoice);
    });
  }

  // ---- Credit notes -------------------------------------------------------------------------

  /**
   * Credits part or all of a sent invoice. The amount may not exceed the total less earlier credit
   * notes (422). On an unpaid invoice it lowers the amount due; when nothing is left due the
   * invoice is PAID (by credit).
   */
  async createCreditNote(scope: TenantScope, input: CreateCreditNoteInput): Promise<CreditNote> {
    return this.#db.transaction().execute(async (trx) => {
      const invoice = await store.findInvoice(trx, scope, input.invoiceId, { forUpdate: true });
      if (!invoice) {
        throw unprocessable(
          `No invoice '${input.invoiceId}' exists in this tenant and mode.`,
          "invoice_id",
          `unknown invoice '${input.invoiceId}'`,
        );
      }
      const refusal = creditNoteRefusal(invoice, input.amount);
      if (refusal)
        throw new AforoError("unprocessable-entity", "The credit note cannot be issued.", {
          errors: [refusal],
        });
      return this.#issueCreditNote(trx, scope, invoice, input);
    });
  }

  /** Inserts the credit note and lowers what the (locked, creditable) invoice still asks for. */
  async #issueCreditNote(
    trx: Kysely<Database>,
    scope: TenantScope,
    invoice: Invoice,
    input: CreateCreditNoteInput,
  ): Promise<CreditNote> {
    const now = this.#clock.now();
    const note: CreditNote = {
      id: newId("creditNote"),
      tenantId: scope.tenantId,
      mode: scope.mode,
      invoiceId: invoice.id,
      customerId: invoice.customerId,
      currency: invoice.currency,
      amountMinor: input.amount,
      reason: input.reason,
      description: input.description ?? null,
      status: "ISSUED",
      createdAt: now,
    };
    await creditNotes.insertCreditNote(trx, note);
    const amountDue = amountDueAfterCredit(invoice, input.amount);
    const settled = amountDue === 0n && (invoice.status === "OPEN" || invoice.status === "OVERDUE");
    const next: Invoice = {
      ...invoice,
      creditNotesTotal: invoice.creditNotesTotal + input.amount,
      amountDue,
      ...(settled ? { status: "PAID" as const, paidAt: now, paymentMethod: "credit_note" } : {}),
    };
    await store.updateInvoiceState(trx, next);
    // Paid by credit is paid: subscribers hear it as they hear a payment (in this transaction).
    if (settled) await this.webhooks.publish(trx, scope, "invoice.paid", invoiceToApi(next));
    return note;
  }

  async getCreditNote(scope: TenantScope, id: string): Promise<CreditNote> {
    const note = await creditNotes.findCreditNote(this.#db, scope, id);
    if (!note) throw notFound("credit note", id);
    return note;
  }

  listCreditNotes(
    scope: TenantScope,
    filter: { invoiceId?: string | undefined },
    page: PageRequest,
  ): Promise<Page<CreditNote>> {
    return creditNotes.listCreditNotes(this.#db, scope, filter, page);
  }
}
