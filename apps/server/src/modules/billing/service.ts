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
import type { Subscription } from "../subscriptions/domain/subscription.ts";
import type { SubscriptionService } from "../subscriptions/service.ts";
import {
  amountDueAfterCredit,
  assertTransition,
  creditNoteRefusal,
  dueDate,
  type Invoice,
  type InvoiceStatus,
} from "./domain/invoice.ts";
import {
  type AppliedPromotion,
  type Period,
  type PipelineInput,
  type PipelineResult,
  type PricedPlan,
  runPipeline,
  type UsageReading,
  usageItemsOf,
} from "./domain/pipeline/index.ts";
import { renderInvoicePdf } from "./pdf.ts";
import type { BillingEntities, BillingPeriod, PeriodInvoicing, TaxContext, TaxProvider } from "./ports.ts";
import type { CreditNote } from "./store/credit-notes.ts";
import * as creditNotes from "./store/credit-notes.ts";
import * as store from "./store/invoices.ts";

export type { CreditNote } from "./store/credit-notes.ts";
export type { InvoiceFilter } from "./store/invoices.ts";

export interface BillingServiceDependencies {
  subscriptions: SubscriptionService;
  pricing: PricingService;
  customers: CustomerService;
  meteringReads: MeteringReadService;
  billingEntities: BillingEntities;
  taxes: TaxProvider;
}

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
 * subscription's first paid period (no earlier invoice opened it).
 */
export function advancePeriodsFor(subscription: Subscription, period: Period): Period[] {
  const periods: Period[] = [];
  const trial = isTrialPeriod(subscription, period);
  if (!trial && period.start.getTime() <= subscription.startAt.getTime()) periods.push(period);
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

  constructor(database: DatabaseHandle, clock: Clock, dependencies: BillingServiceDependencies) {
    this.#database = database;
    this.#clock = clock;
    this.#deps = dependencies;
  }

  get #db(): Kysely<Database> {
    return this.#database.db;
  }

  // ---- Running the pipeline -----------------------------------------------------------------

  /** Invoices one ended period and finalises it (OPEN, numbered); idempotent per period. */
  async invoicePeriod(
    scope: TenantScope,
    subscriptionId: string,
    period: BillingPeriod,
    options: { billRunId?: string },
  ): Promise<{ invoiceId: string; created: boolean }> {
    const existing = await store.findInvoiceIdForPeriod(this.#db, scope, subscriptionId, period.start);
    if (existing) return this.#finalizeExistingDraft(scope, existing);
    const { invoice, carryOut } = await this.#compute(
      scope,
      subscriptionId,
      period,
      period.end,
      options.billRunId,
    );
    const stored = await this.#db.transaction().execute(async (trx) => {
      const result = await this.#storeDraft(trx, scope, invoice, carryOut);
      if (result.created) await this.#finalizeIn(trx, scope, invoice);
      return result;
    });
    return stored.created ? stored : this.#finalizeExistingDraft(scope, stored.invoiceId);
  }

  /** A period drafted earlier (draftPeriod) is finalised by the run; any other state is left alone. */
  async #finalizeExistingDraft(
    scope: TenantScope,
    id: string,
  ): Promise<{ invoiceId: string; created: boolean }> {
    await this.#act(scope, id, async (trx, invoice) =>
      invoice.status === "DRAFT" ? this.#finalizeIn(trx, scope, invoice) : invoice,
    );
    return { invoiceId: id, created: false };
  }

  /**
   * Writes a period's DRAFT without finalising it (POST /v1/invoices/{id}/finalize numbers it).
   * Idempotent like invoicePeriod: an invoiced period returns its existing invoice.
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
    const { invoice } = await this.#compute(scope, subscriptionId, period, now, undefined);
    return invoice;
  }

  async #storeDraft(
    trx: Kysely<Database>,
    scope: TenantScope,
    invoice: Invoice,
    carryOut: Record<string, string>,
  ): Promise<{ invoiceId: string; created: boolean }> {
    if (!(await store.insertDraft(trx, invoice))) {
      // A concurrent run invoiced the period first; the insert waited for it and did nothing.
      const id = await store.findInvoiceIdForPeriod(trx, scope, invoice.subscriptionId, invoice.periodStart);
      if (!id)
        throw new Error(
          `invoice of ${invoice.subscriptionId} at ${invoice.periodStart.toISOString()} vanished`,
        );
      return { invoiceId: id, created: false };
    }
    await store.saveCarryOut(trx, scope, invoice.subscriptionId, invoice.periodEnd, invoice.id, carryOut);
    return { invoiceId: invoice.id, created: true };
  }

  /** Setup and compute: reads everything the pipeline needs, runs it, shapes a draft invoice. */
  async #compute(
    scope: TenantScope,
    subscriptionId: string,
    period: Period,
    asOf: Date,
    billRunId: string | undefined,
  ): Promise<{ invoice: Invoice; carryOut: Record<string, string> }> {
    const { subscriptions, customers, taxes } = this.#deps;
    const subscription = await subscriptions.get(scope, subscriptionId);
    const expected = subscriptionPeriodAt(subscription, period.start);
    if (!samePeriod(expected, period)) {
      throw unprocessable(
        `[${period.start.toISOString()}, ${period.end.toISOString()}) is not a billing period of subscription '${subscriptionId}'.`,
        "period",
        `the period starting there is [${expected.start.toISOString()}, ${expected.end.toISOString()})`,
      );
    }
    const plans = await this.#plansOf(scope, subscription);
    const customer = await customers.get(scope, subscription.customerId);
    const promotion = await this.#promotionOf(scope, subscription);
    const input: PipelineInput = {
      currency: subscription.currency,
      period,
      advancePeriods: advancePeriodsFor(subscription, period),
      chargeUsage: !isTrialPeriod(subscription, period),
      plans,
      usage: await this.#usage(scope, subscription, plans, period, asOf),
      carryIn: await store.carryIn(this.#db, scope, subscription.id, period.start),
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
    };
    const result = await runPipeline(input, (lines) =>
      taxes.calculate(scope, input.taxContext, input.currency, lines, period.end),
    );
    return {
      invoice: this.#draftOf(scope, subscription, period, result, billRunId),
      carryOut: result.carryOut,
    };
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

  async #plansOf(scope: TenantScope, subscription: Subscription): Promise<PricedPlan[]> {
    const { pricing } = this.#deps;
    const plans: PricedPlan[] = [];
    for (const pinned of subscription.items) {
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
      const answer = await this.#deps.meteringReads.usage(scope, {
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
  finalize(scope: TenantScope, id: string): Promise<Invoice> {
    return this.#act(scope, id, (trx, invoice) => this.#finalizeIn(trx, scope, invoice));
  }

  async #finalizeIn(trx: Kysely<Database>, scope: TenantScope, invoice: Invoice): Promise<Invoice> {
    assertTransition(invoice.id, invoice.status, "OPEN", "finalized");
    const { billingEntities } = this.#deps;
    const now = this.#clock.now();
    const entityId = invoice.billingEntityId ?? (await billingEntities.defaultEntity(scope, trx)).id;
    const number = await billingEntities.nextInvoiceNumber(scope, entityId, now, trx);
    const next: Invoice = {
      ...invoice,
      status: "OPEN",
      number,
      billingEntityId: entityId,
      issuedAt: now,
      finalizedAt: now,
      dueAt: dueDate(now),
    };
    await store.updateInvoiceState(trx, next);
    return next;
  }

  /** DRAFT, OPEN or OVERDUE → VOID. A paid invoice cannot be voided (409): credit it instead. */
  void(scope: TenantScope, id: string): Promise<Invoice> {
    return this.#transition(scope, id, "VOID", "voided", (invoice, now) => ({ ...invoice, voidedAt: now }));
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
      await store.updateInvoiceState(trx, {
        ...invoice,
        creditNotesTotal: invoice.creditNotesTotal + input.amount,
        amountDue,
        ...(settled ? { status: "PAID" as const, paidAt: now, paymentMethod: "credit_note" } : {}),
      });
      return note;
    });
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
