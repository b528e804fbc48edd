import { AforoError, newId } from "@aforo/core";
import type { Kysely } from "kysely";
import type { Clock } from "../../clock.ts";
import type { DatabaseHandle } from "../../db/database.ts";
import type { Database } from "../../db/schema.ts";
import type { TenantScope } from "../../http/route-config.ts";
import type { Invoice } from "../billing/domain/invoice.ts";
import { toApi as invoiceToApi } from "../billing/routes/schemas.ts";
import { findInvoice, updateInvoiceState } from "../billing/store/invoices.ts";
import { noWebhooks, type WebhookPublisher } from "../webhooks/publisher.ts";
import type { SecretBox } from "../webhooks/secrets.ts";
import {
  afterFailedAttempt,
  type DunningCycle,
  type Payment,
  type PaymentMethod,
  type PaymentTrigger,
  type ProviderName,
} from "./domain.ts";
import { manualProvider } from "./providers/manual.ts";
import {
  type ChargeOutcome,
  type ChargeRequest,
  type PaymentProvider,
  ProviderUnavailable,
} from "./providers/provider.ts";
import { type StripeEndpoint, StripeProvider } from "./providers/stripe.ts";
import { paymentToApi } from "./routes/schemas.ts";
import * as store from "./store.ts";

/** Invoice states a payment can settle (a written-off invoice still takes a late payment). */
export const PAYABLE: readonly Invoice["status"][] = ["OPEN", "OVERDUE", "UNCOLLECTIBLE"];
/** Invoice states automatic collection and dunning charge. */
export const COLLECTABLE: readonly Invoice["status"][] = ["OPEN", "OVERDUE"];
const MAX_CACHED_PROVIDERS = 1000;

/** A PENDING payment recorded in step 1, with the method step 2 charges. */
export interface Begun {
  payment: Payment;
  method: PaymentMethod | null;
}

/** A recorded outcome and what must follow its commit. */
export interface Settled {
  payment: Payment;
  /** The subscription whose state dunning may have to change. */
  subscriptionId: string | null;
  /** A top-up's charge succeeded: the wallet is credited next. */
  creditTopUp: boolean;
}

export interface BeginTarget {
  invoice?: Invoice;
  topUp?: store.PendingTopUp;
  method: PaymentMethod | null;
  trigger: PaymentTrigger;
  cycle: DunningCycle | null;
}

export function notFound(kind: string, id: string): AforoError {
  return new AforoError("not-found", `No ${kind} with id '${id}' exists in this tenant and mode.`);
}

export function unprocessable(detail: string, field: string, message: string): AforoError {
  return new AforoError("unprocessable-entity", detail, { errors: [{ field, message }] });
}

export function isAforoError(error: unknown, slug: string): boolean {
  return error instanceof AforoError && error.slug === slug;
}

/**
 * A charge in three steps, so that no database transaction waits on the provider: (1) `beginIn`,
 * under the caller's lock of the invoice (or top-up request), records a PENDING payment — at most
 * one per invoice, so concurrent collectors charge once; (2) `charge` calls the provider with the
 * payment's idempotency key; (3) `settle`, under the payment's row lock, records the outcome with
 * its consequences (invoice PAID, dunning step, webhook events) in one transaction. A process that
 * dies between the steps leaves a PENDING payment that is resumed with the same idempotency key.
 */
export class Collection {
  webhooks: WebhookPublisher = noWebhooks;
  /** Told of every recorded outcome after its commit (subscription sync, wallet credit). */
  afterSettle: (scope: TenantScope, settled: Settled) => Promise<void> = async () => {};
  /** The Stripe API's location and SDK retries; tests lower the retries. */
  stripeEndpoint: StripeEndpoint;
  readonly #database: DatabaseHandle;
  readonly #clock: Clock;
  readonly #secrets: SecretBox;
  /** Stripe clients by sealed secret: a new secret seals differently, so edits are picked up. */
  readonly #providers = new Map<string, StripeProvider>();

  constructor(database: DatabaseHandle, clock: Clock, secrets: SecretBox, stripeEndpoint: StripeEndpoint) {
    this.#database = database;
    this.#clock = clock;
    this.#secrets = secrets;
    this.stripeEndpoint = stripeEndpoint;
  }

  get #db(): Kysely<Database> {
    return this.#database.db;
  }

  /** The provider of a scope; undefined when the tenant has not configured it in this mode. */
  async provider(scope: TenantScope, name: ProviderName): Promise<PaymentProvider | undefined> {
    if (name === "manual") return manualProvider;
    const row = await store.findSettings(this.#db, scope);
    const sealed = row?.stripe_secret_sealed;
    if (!sealed) return undefined;
    let provider = this.#providers.get(sealed);
    if (!provider) {
      if (this.#providers.size >= MAX_CACHED_PROVIDERS) this.#providers.clear();
      const secret = await this.#secrets.open(sealed).catch((error: unknown) => {
        // A changed AFORO_SECRETS_KEY: nothing is charged (the payment waits) until the key is set again.
        throw new ProviderUnavailable(`the stored Stripe key cannot be opened: ${String(error)}`);
      });
      provider = new StripeProvider(secret, this.stripeEndpoint);
      this.#providers.set(sealed, provider);
    }
    return provider;
  }

  /** Step 1, in the caller's transaction (which holds the invoice's or request's lock). */
  async beginIn(trx: Kysely<Database>, scope: TenantScope, target: BeginTarget): Promise<Begun> {
    const { invoice, topUp, method } = target;
    const earlier = invoice
      ? await store.paymentsFor(trx, scope, { invoiceId: invoice.id })
      : await store.paymentsFor(trx, scope, { topUpRequestId: topUp?.id ?? "" });
    const now = this.#clock.now();
    const id = newId("payment");
    const payment: Payment = {
      id,
      tenantId: scope.tenantId,
      mode: scope.mode,
      customerId: invoice?.customerId ?? topUp?.customerId ?? "",
      invoiceId: invoice?.id ?? null,
      topUpRequestId: topUp?.id ?? null,
      dunningCycleId: target.cycle?.id ?? null,
      paymentMethodId: method?.id ?? null,
      provider: method?.provider ?? "manual",
      amount: invoice?.amountDue ?? topUp?.amount ?? 0n,
      currency: invoice?.currency ?? topUp?.currency ?? "",
      status: "PENDING",
      providerPaymentId: null,
      failureCode: null,
      failureMessage: null,
      attempt: earlier.length + 1,
      trigger: target.trigger,
      idempotencyKey: `aforo_${id}`,
      createdAt: now,
      updatedAt: now,
    };
    await store.insertPayment(trx, payment);
    return { payment, method };
  }

  /**
   * The provider's request for a payment: derived from the payment alone, so a resumed charge
   * sends exactly what the first one sent (Stripe refuses an idempotency key with other parameters).
   */
  requestOf(payment: Payment, method: PaymentMethod | null, reference?: string): ChargeRequest {
    const subject: Record<string, string> = payment.invoiceId
      ? { aforo_invoice_id: payment.invoiceId }
      : { aforo_top_up_request_id: payment.topUpRequestId ?? "" };
    return {
      amount: payment.amount,
      currency: payment.currency,
      method: method && {
        providerPaymentMethodId: method.providerPaymentMethodId,
        providerCustomerId: method.providerCustomerId,
      },
      idempotencyKey: payment.idempotencyKey,
      description: payment.invoiceId
        ? `Invoice ${payment.invoiceId}`
        : `Wallet top-up ${payment.topUpRequestId}`,
      metadata: { aforo_payment_id: payment.id, aforo_tenant_id: payment.tenantId, ...subject },
      reference,
    };
  }

  /** Step 2: the provider call, outside any transaction. Throws ProviderUnavailable. */
  async charge(scope: TenantScope, begun: Begun): Promise<ChargeOutcome> {
    const provider = await this.provider(scope, begun.payment.provider);
    if (!provider) {
      return {
        status: "failed",
        providerPaymentId: null,
        code: "provider_not_configured",
        reason: `${begun.payment.provider} is not configured in this tenant and mode.`,
      };
    }
    return provider.charge(this.requestOf(begun.payment, begun.method));
  }

  /** Step 3: the outcome and its consequences in one transaction, then what follows the commit. */
  async settle(scope: TenantScope, paymentId: string, outcome: ChargeOutcome): Promise<Payment> {
    const settled = await this.#db.transaction().execute(async (trx) => {
      const payment = await store.findPayment(trx, scope, paymentId, { forUpdate: true });
      if (!payment) throw new Error(`payment ${paymentId} vanished`);
      // Another process (a resumption, a concurrent settle) recorded the outcome first.
      if (payment.status !== "PENDING") return { payment, subscriptionId: null, creditTopUp: false };
      return this.settleIn(trx, scope, payment, outcome);
    });
    await this.afterSettle(scope, settled);
    return settled.payment;
  }

  /** Step 3 in the caller's transaction (a manual payment records its outcome at once). */
  async settleIn(
    trx: Kysely<Database>,
    scope: TenantScope,
    payment: Payment,
    outcome: ChargeOutcome,
  ): Promise<Settled> {
    const now = this.#clock.now();
    const providerPaymentId = outcome.providerPaymentId ?? payment.providerPaymentId;
    if (outcome.status === "pending") {
      const waiting = { ...payment, providerPaymentId, updatedAt: now };
      await store.updatePayment(trx, waiting);
      return { payment: waiting, subscriptionId: null, creditTopUp: false };
    }
    const succeeded = outcome.status === "succeeded";
    const next: Payment = {
      ...payment,
      status: succeeded ? "SUCCEEDED" : "FAILED",
      providerPaymentId,
      failureCode: outcome.status === "failed" ? outcome.code : succeeded ? null : "authentication_required",
      failureMessage: outcome.status === "succeeded" ? null : outcome.reason,
      updatedAt: now,
    };
    await store.updatePayment(trx, next);
    const type = succeeded ? "payment.succeeded" : "payment.failed";
    await this.webhooks.publish(trx, scope, type, paymentToApi(next));
    if (next.topUpRequestId) {
      if (!succeeded) await store.decideTopUp(trx, scope, next.topUpRequestId, "FAILED");
      return { payment: next, subscriptionId: null, creditTopUp: succeeded };
    }
    const subscriptionId = await this.#applyToInvoice(trx, scope, next, now);
    return { payment: next, subscriptionId, creditTopUp: false };
  }

  /**
   * A settled payment's consequences for its invoice and dunning cycle. Success: the invoice is
   * PAID and its cycle RECOVERED. A failed dunning attempt schedules the next one or, after the
   * last, writes the invoice off (UNCOLLECTIBLE). Returns the subscription to re-sync, if any.
   */
  async #applyToInvoice(
    trx: Kysely<Database>,
    scope: TenantScope,
    payment: Payment,
    now: Date,
  ): Promise<string | null> {
    if (!payment.invoiceId) return null;
    const invoice = await findInvoice(trx, scope, payment.invoiceId, { forUpdate: true });
    if (!invoice) throw new Error(`invoice ${payment.invoiceId} vanished`);
    const cycle = await store.findCycle(trx, scope, { invoiceId: invoice.id }, { forUpdate: true });
    if (payment.status === "SUCCEEDED") {
      // A charge that lands on an invoice voided meanwhile is recorded but cannot pay it.
      if (PAYABLE.includes(invoice.status)) {
        const paid: Invoice = {
          ...invoice,
          status: "PAID",
          paidAt: now,
          amountPaid: invoice.amountDue,
          paymentMethod: payment.provider,
        };
        await updateInvoiceState(trx, paid);
        await this.webhooks.publish(trx, scope, "invoice.paid", invoiceToApi(paid));
      }
      if (cycle && (cycle.status === "ACTIVE" || cycle.status === "EXHAUSTED")) {
        await store.updateCycle(trx, endCycle(cycle, "RECOVERED", now));
      }
      return invoice.subscriptionId;
    }
    if (!cycle || cycle.id !== payment.dunningCycleId || cycle.status !== "ACTIVE") return null;
    const failure = { code: payment.failureCode ?? "failed", message: payment.failureMessage };
    await this.failAttempt(trx, scope, cycle, invoice, failure, now);
    return invoice.subscriptionId;
  }

  /** One more failed attempt of a cycle: the next is scheduled, or the invoice is written off. */
  async failAttempt(
    trx: Kysely<Database>,
    scope: TenantScope,
    cycle: DunningCycle,
    invoice: Invoice,
    failure: { code: string; message: string | null },
    now: Date,
  ): Promise<void> {
    const step = afterFailedAttempt(cycle);
    await store.updateCycle(trx, {
      ...cycle,
      ...step,
      lastFailureCode: failure.code,
      lastFailureMessage: failure.message,
      subscriptionSynced: false,
      endedAt: step.status === "EXHAUSTED" ? now : null,
      updatedAt: now,
    });
    if (step.status === "EXHAUSTED" && COLLECTABLE.includes(invoice.status)) {
      const written: Invoice = { ...invoice, status: "UNCOLLECTIBLE", markedUncollectibleAt: now };
      await updateInvoiceState(trx, written);
      await this.webhooks.publish(trx, scope, "invoice.marked_uncollectible", invoiceToApi(written));
    }
  }
}

/** A cycle that has ended (paid, or its invoice voided): nothing more is tried. */
export function endCycle(cycle: DunningCycle, status: "RECOVERED" | "CLOSED", now: Date): DunningCycle {
  return { ...cycle, status, nextAttemptAt: null, subscriptionSynced: false, endedAt: now, updatedAt: now };
}
