import { AforoError, newId } from "@aforo/core";
import { type Kysely, sql } from "kysely";
import type { Clock } from "../../clock.ts";
import type { DatabaseHandle } from "../../db/database.ts";
import type { Page, PageRequest } from "../../db/pagination.ts";
import type { Database } from "../../db/schema.ts";
import type { TenantScope } from "../../http/route-config.ts";
import type { JobQueue } from "../../jobs/queue.ts";
import type { ApiKeyService } from "../api-keys/service.ts";
import { assertTransition, type Invoice } from "../billing/domain/invoice.ts";
import { findInvoice } from "../billing/store/invoices.ts";
import type { CustomerService } from "../customers/service.ts";
import type { SubscriptionService } from "../subscriptions/service.ts";
import type { WalletService } from "../wallets/service.ts";
import { publishEach, type WebhookEventType, type WebhookPublisher } from "../webhooks/publisher.ts";
import type { SecretBox } from "../webhooks/secrets.ts";
import { Collection, notFound, unprocessable } from "./collection.ts";
import {
  DEFAULT_DUNNING_SCHEDULE_DAYS,
  type DunningCycle,
  type MethodProvider,
  type Payment,
  type PaymentMethod,
  type PaymentSettings,
  scheduleProblem,
  secretHint,
  stripeKeyProblem,
} from "./domain.ts";
import { Dunning } from "./dunning.ts";
import { manualProvider } from "./providers/manual.ts";
import { type ChargeOutcome, ProviderUnavailable } from "./providers/provider.ts";
import type { StripeEndpoint } from "./providers/stripe.ts";
import * as store from "./store.ts";
import { TopUps } from "./top-ups.ts";

export type { CycleFilter, PaymentFilter } from "./store.ts";

const RUN_DUE_JOB = "payments.run_due";
/** One finalised invoice to collect now (queued in the finalising transaction). */
const COLLECT_JOB = "payments.collect";
/** pg-boss cron has minute resolution: due attempts, top-ups and resumptions wait at most this. */
const RUN_DUE_CRON = "* * * * *";
const BATCH = 100;
/** A PENDING payment untouched this long is resumed (its process may have died mid-charge). */
const STALE_PENDING_MS = 5 * 60_000;

export interface PaymentServiceDependencies {
  customers: CustomerService;
  subscriptions: SubscriptionService;
  keys: ApiKeyService;
  wallets: WalletService;
  jobs: JobQueue;
  /** Seals provider secrets (AES-256-GCM, the same box as webhook signing secrets). */
  secrets: SecretBox;
  /** Where the Stripe API is (tests and stripe-mock point it at a local server). */
  stripe?: StripeEndpoint | undefined;
}

export interface UpdateSettingsInput {
  /** undefined: unchanged; null: removed. */
  stripeSecretKey?: string | null | undefined;
  automaticCollection?: boolean | undefined;
  /** undefined: unchanged; null: back to the default schedule. */
  dunningScheduleDays?: number[] | null | undefined;
}

export interface AddPaymentMethodInput {
  provider: MethodProvider;
  providerPaymentMethodId: string;
  providerCustomerId?: string | null | undefined;
  /** Make it the customer's default; the first method saved is the default anyway. */
  makeDefault?: boolean | undefined;
}

export interface PayInvoiceInput {
  /**
   * `manual` (the default): record an offline payment. `provider`: charge the customer's saved
   * method (`paymentMethodId`, or the default one). A `paymentMethodId` alone means `provider`.
   */
  method?: "manual" | "provider" | undefined;
  /** Minor units; when given it must equal what is due. */
  amount?: bigint | undefined;
  paymentMethodId?: string | undefined;
  /** The operator's reference of an offline payment (a transfer id), kept as provider_payment_id. */
  reference?: string | undefined;
}

export interface RunDueResult {
  cyclesStarted: number;
  attempts: number;
  resumed: number;
  topUps: number;
  subscriptionsSynced: number;
}

interface CollectJob {
  tenantId: string;
  mode: TenantScope["mode"];
  invoiceId: string;
}

function paymentFailed(payment: Payment): AforoError {
  return new AforoError(
    "payment-failed",
    `The ${payment.provider} charge of ${payment.amount} ${payment.currency} minor units failed: ${payment.failureMessage ?? payment.failureCode}.`,
    {
      extensions: {
        payment_id: payment.id,
        failure_code: payment.failureCode,
        failure_message: payment.failureMessage,
      },
    },
  );
}

/**
 * Payments: provider settings, customers' saved methods, the operator's payments of invoices, and
 * the background work — automatic collection with dunning (dunning.ts), resumption of charges a
 * lost process left PENDING, and wallet top-ups (top-ups.ts). Every charge goes through the three
 * steps of collection.ts, so none is ever made twice.
 */
export class PaymentService {
  readonly #database: DatabaseHandle;
  readonly #clock: Clock;
  readonly #deps: PaymentServiceDependencies;
  readonly #collection: Collection;
  readonly #dunning: Dunning;
  readonly #topUps: TopUps;
  #running: Promise<unknown> = Promise.resolve();
  #started = false;

  constructor(database: DatabaseHandle, clock: Clock, dependencies: PaymentServiceDependencies) {
    this.#database = database;
    this.#clock = clock;
    this.#deps = dependencies;
    this.#collection = new Collection(database, clock, dependencies.secrets, dependencies.stripe ?? {});
    this.#dunning = new Dunning(database, clock, {
      subscriptions: dependencies.subscriptions,
      keys: dependencies.keys,
      collection: this.#collection,
      schedule: async (scope) => (await this.getSettings(scope)).dunningScheduleDays,
    });
    this.#topUps = new TopUps(database, this.#collection, dependencies.wallets);
    this.#collection.afterSettle = async (scope, settled) => {
      // Committed whatever happens here: the background pass re-applies both until they hold.
      if (settled.subscriptionId)
        await this.syncSubscription(scope, settled.subscriptionId).catch(() => undefined);
      if (settled.creditTopUp) await this.#topUps.credit(scope, settled.payment).catch(() => undefined);
    };
  }

  /** payment.succeeded|failed, invoice.paid|marked_uncollectible, in the recording transaction. */
  get webhooks(): WebhookPublisher {
    return this.#collection.webhooks;
  }

  set webhooks(publisher: WebhookPublisher) {
    this.#collection.webhooks = publisher;
  }

  /** The Stripe API's location and SDK retries (a client made after a change uses them). */
  get stripeEndpoint(): StripeEndpoint {
    return this.#collection.stripeEndpoint;
  }

  get #db(): Kysely<Database> {
    return this.#database.db;
  }

  /**
   * Works the background pass every minute (pg-boss schedule, one process at a time) and the
   * collection of each invoice as it is finalised.
   */
  async start(): Promise<void> {
    await this.#deps.jobs.work(RUN_DUE_JOB, async () => {
      await this.runDue();
    });
    await this.#deps.jobs.work<CollectJob>(COLLECT_JOB, async (job) => {
      const { tenantId, mode, invoiceId } = job.data;
      await this.collectInvoice({ tenantId, mode }, invoiceId);
    });
    await this.#deps.jobs.schedule(RUN_DUE_JOB, RUN_DUE_CRON);
    this.#started = true;
  }

  /** Waits for background work in progress (the queue stops taking new jobs). */
  async stop(): Promise<void> {
    await this.#running.catch(() => undefined);
  }

  /**
   * Wraps billing's publisher: when an invoice with something due is finalised, its collection is
   * queued in the finalising transaction (it exists exactly when the invoice does) and runs after
   * the commit. Without a started queue (a CLI one-shot) the background pass collects it instead.
   */
  collectOnFinalize(inner: WebhookPublisher): WebhookPublisher {
    const jobOf = (
      scope: TenantScope,
      type: string,
      data: Record<string, unknown>,
    ): CollectJob | undefined => {
      const due = typeof data.amount_due === "number" && data.amount_due > 0;
      if (type !== "invoice.finalized" || !due || data.status !== "OPEN" || typeof data.id !== "string")
        return undefined;
      return { tenantId: scope.tenantId, mode: scope.mode, invoiceId: data.id };
    };
    const queue = async (trx: Kysely<Database>, jobs: CollectJob[]) => {
      if (jobs.length === 0 || !this.#started) return;
      if (!trx.isTransaction) {
        for (const job of jobs) {
          await this.#deps.jobs
            .send(COLLECT_JOB, job, { singletonKey: job.invoiceId })
            .catch(() => undefined);
        }
        return;
      }
      // Behind a savepoint: if the queue cannot take the jobs the invoices still commit, and the
      // background pass collects them within a minute.
      await sql`savepoint payments_collect`.execute(trx);
      try {
        for (const job of jobs) {
          await this.#deps.jobs.send(COLLECT_JOB, job, { singletonKey: job.invoiceId, transaction: trx });
        }
        await sql`release savepoint payments_collect`.execute(trx);
      } catch {
        await sql`rollback to savepoint payments_collect`.execute(trx);
      }
    };
    // Queued only for the invoices a job would collect now (automatic collection on, a default
    // method): the job would end at once for the others, and the background pass still finds any
    // that becomes collectable. A bill run's chunk takes one savepoint for all of its collections.
    const queueCollectable = async (
      trx: Kysely<Database>,
      scope: TenantScope,
      type: WebhookEventType,
      data: readonly Record<string, unknown>[],
    ) => {
      const due = data.filter((item) => jobOf(scope, type, item) !== undefined);
      if (due.length === 0 || !this.#started) return;
      if ((await store.findSettings(trx, scope))?.automatic_collection === false) return;
      const customerIds = due.flatMap((item) =>
        typeof item.customer_id === "string" ? [item.customer_id] : [],
      );
      const paying = await store.customersWithDefaultMethod(trx, scope, customerIds);
      await queue(
        trx,
        due.flatMap((item) =>
          typeof item.customer_id === "string" && paying.has(item.customer_id)
            ? (jobOf(scope, type, item) ?? [])
            : [],
        ),
      );
    };
    return {
      publish: async (trx, scope, type, data) => {
        await inner.publish(trx, scope, type, data);
        await queueCollectable(trx, scope, type, [data]);
      },
      publishMany: async (trx, scope, type, data) => {
        await publishEach(inner, trx, scope, type, data);
        await queueCollectable(trx, scope, type, data);
      },
    };
  }

  /**
   * Starts collecting one invoice now (its dunning cycle, and the first attempt if the schedule
   * says now), when automatic collection is on and the customer has a default method.
   */
  collectInvoice(scope: TenantScope, invoiceId: string, now: Date = this.#clock.now()): Promise<void> {
    return this.#serially(() => this.#collectInvoice(scope, invoiceId, now));
  }

  async #collectInvoice(scope: TenantScope, invoiceId: string, now: Date): Promise<void> {
    const invoice = await findInvoice(this.#db, scope, invoiceId);
    if (!invoice || !(await store.collectsAutomatically(this.#db, scope, invoice.customerId))) return;
    await this.#dunning.startCycle(scope, invoiceId, now);
    const cycle = await store.findCycle(this.#db, scope, { invoiceId });
    if (cycle?.status === "ACTIVE" && cycle.nextAttemptAt && cycle.nextAttemptAt <= now) {
      await this.#dunning.attempt(scope, cycle.id, now);
    }
  }

  /** What dunning asks of the subscription, applied (with its consumer keys); idempotent. */
  syncSubscription(scope: TenantScope, subscriptionId: string): Promise<void> {
    return this.#dunning.syncSubscription(scope, subscriptionId);
  }

  // ---- Settings -----------------------------------------------------------------------------------

  async getSettings(scope: TenantScope): Promise<PaymentSettings> {
    const row = await store.findSettings(this.#db, scope);
    const days = row?.dunning_schedule_days ?? null;
    return {
      stripe:
        row?.stripe_secret_sealed && row.stripe_secret_hint && row.stripe_updated_at
          ? { secretHint: row.stripe_secret_hint, updatedAt: new Date(row.stripe_updated_at) }
          : null,
      automaticCollection: row?.automatic_collection ?? true,
      dunningScheduleDays: days ?? [...DEFAULT_DUNNING_SCHEDULE_DAYS],
      dunningScheduleIsDefault: days === null,
      updatedAt: row ? new Date(row.updated_at) : null,
    };
  }

  async updateSettings(scope: TenantScope, input: UpdateSettingsInput): Promise<PaymentSettings> {
    const key = input.stripeSecretKey;
    if (typeof key === "string") {
      const problem = stripeKeyProblem(key, scope.mode);
      if (problem) throw unprocessable("The Stripe key cannot be used here.", "stripe.secret_key", problem);
    }
    const days = input.dunningScheduleDays;
    if (days) {
      const problem = scheduleProblem(days);
      if (problem)
        throw unprocessable("The dunning schedule is not valid.", "dunning.schedule_days", problem);
    }
    // Sealed before the transaction: the box may read its key from the database.
    const stripe =
      key === undefined
        ? undefined
        : key === null
          ? null
          : { sealed: await this.#deps.secrets.seal(key), hint: secretHint(key) };
    await store.saveSettings(
      this.#db,
      scope,
      { stripe, automaticCollection: input.automaticCollection, dunningScheduleDays: days },
      this.#clock.now(),
    );
    return this.getSettings(scope);
  }

  // ---- Payment methods ----------------------------------------------------------------------------

  async addPaymentMethod(
    scope: TenantScope,
    customerRef: string,
    input: AddPaymentMethodInput,
  ): Promise<PaymentMethod> {
    const customer = await this.#deps.customers.get(scope, customerRef);
    if (input.provider === "stripe" && !(await this.getSettings(scope)).stripe) {
      throw unprocessable(
        `Payments through ${input.provider} are not configured in this tenant and mode (PUT /v1/payment_settings).`,
        "provider",
        `${input.provider} is not configured`,
      );
    }
    const now = this.#clock.now();
    const method = await this.#db.transaction().execute(async (trx) => {
      await store.lockCustomer(trx, scope, customer.id);
      const current = await store.defaultMethod(trx, scope, customer.id);
      const makeDefault = input.makeDefault === true || current === undefined;
      if (makeDefault && current) await store.clearDefault(trx, scope, customer.id);
      const method: PaymentMethod = {
        id: newId("paymentMethod"),
        tenantId: scope.tenantId,
        mode: scope.mode,
        customerId: customer.id,
        provider: input.provider,
        providerPaymentMethodId: input.providerPaymentMethodId,
        providerCustomerId: input.providerCustomerId ?? null,
        isDefault: makeDefault,
        createdAt: now,
        removedAt: null,
      };
      if (!(await store.insertMethod(trx, method))) {
        throw new AforoError(
          "conflict",
          `Payment method '${input.providerPaymentMethodId}' is already saved for customer '${customer.id}'.`,
        );
      }
      return method;
    });
    return method;
  }

  async listPaymentMethods(scope: TenantScope, customerRef: string): Promise<PaymentMethod[]> {
    const customer = await this.#deps.customers.get(scope, customerRef);
    return store.listMethods(this.#db, scope, customer.id);
  }

  /** Removes a saved method (payments keep naming it); a removed default leaves none. */
  async removePaymentMethod(scope: TenantScope, customerRef: string, id: string): Promise<PaymentMethod> {
    const customer = await this.#deps.customers.get(scope, customerRef);
    const method = await store.findMethod(this.#db, scope, id);
    if (!method || method.customerId !== customer.id || method.removedAt)
      throw notFound("payment method", id);
    const now = this.#clock.now();
    await store.removeMethod(this.#db, scope, id, now);
    return { ...method, isDefault: false, removedAt: now };
  }

  // ---- Payments -----------------------------------------------------------------------------------

  async get(scope: TenantScope, id: string): Promise<Payment> {
    const payment = await store.findPayment(this.#db, scope, id);
    if (!payment) throw notFound("payment", id);
    return payment;
  }

  list(scope: TenantScope, filter: store.PaymentFilter, page: PageRequest): Promise<Page<Payment>> {
    return store.listPayments(this.#db, scope, filter, page);
  }

  async getCycle(scope: TenantScope, id: string): Promise<DunningCycle> {
    const cycle = await store.findCycle(this.#db, scope, { id });
    if (!cycle) throw notFound("dunning cycle", id);
    return cycle;
  }

  listCycles(scope: TenantScope, filter: store.CycleFilter, page: PageRequest): Promise<Page<DunningCycle>> {
    return store.listCycles(this.#db, scope, filter, page);
  }

  /**
   * POST /v1/invoices/{id}/pay. Manual: the operator's offline payment is recorded and the invoice
   * is PAID. Provider: the customer's saved method is charged now (outside any dunning schedule);
   * a refusal is recorded and answered 402. Either way a paid invoice ends its dunning and brings
   * a PAST_DUE or SUSPENDED subscription (and its consumer keys) back.
   */
  async payInvoice(scope: TenantScope, invoiceId: string, input: PayInvoiceInput = {}): Promise<Invoice> {
    const method = input.method ?? (input.paymentMethodId ? "provider" : "manual");
    if (method === "manual") {
      if (input.paymentMethodId !== undefined) {
        throw unprocessable(
          "A saved payment method is charged only with method 'provider'.",
          "payment_method_id",
          "needs method 'provider'",
        );
      }
      return this.#payManually(scope, invoiceId, input);
    }
    if (input.reference !== undefined) {
      throw unprocessable("A reference describes an offline payment.", "reference", "needs method 'manual'");
    }
    const begun = await this.#db.transaction().execute(async (trx) => {
      const invoice = await this.#lockPayable(trx, scope, invoiceId, input.amount);
      if (invoice.amountDue <= 0n) {
        throw unprocessable(`Invoice '${invoiceId}' has nothing due to collect.`, "method", "nothing is due");
      }
      const saved = await this.#methodFor(trx, scope, invoice.customerId, input.paymentMethodId);
      return this.#collection.beginIn(trx, scope, {
        invoice,
        method: saved,
        trigger: "operator",
        cycle: null,
      });
    });
    let outcome: ChargeOutcome;
    try {
      outcome = await this.#collection.charge(scope, begun);
    } catch (error) {
      if (!(error instanceof ProviderUnavailable)) throw error;
      throw new AforoError(
        "payment-provider-error",
        `${begun.payment.provider} could not be reached or failed (${error.message}); payment '${begun.payment.id}' stays PENDING and is resolved in the background.`,
        { extensions: { payment_id: begun.payment.id } },
      );
    }
    const payment = await this.#collection.settle(scope, begun.payment.id, outcome);
    if (payment.status === "FAILED") throw paymentFailed(payment);
    const invoice = await findInvoice(this.#db, scope, invoiceId);
    if (!invoice) throw notFound("invoice", invoiceId);
    return invoice;
  }

  async #payManually(scope: TenantScope, invoiceId: string, input: PayInvoiceInput): Promise<Invoice> {
    const outcome = await this.#db.transaction().execute(async (trx) => {
      const invoice = await this.#lockPayable(trx, scope, invoiceId, input.amount);
      const { payment } = await this.#collection.beginIn(trx, scope, {
        invoice,
        method: null,
        trigger: "operator",
        cycle: null,
      });
      const charged = await manualProvider.charge(this.#collection.requestOf(payment, null, input.reference));
      return this.#collection.settleIn(trx, scope, payment, charged);
    });
    await this.#collection.afterSettle(scope, outcome);
    const invoice = await findInvoice(this.#db, scope, invoiceId);
    if (!invoice) throw notFound("invoice", invoiceId);
    return invoice;
  }

  /** The invoice, locked, if it can be paid now: 404, 409 (state or a charge in flight), 422 (amount). */
  async #lockPayable(
    trx: Kysely<Database>,
    scope: TenantScope,
    invoiceId: string,
    amount: bigint | undefined,
  ): Promise<Invoice> {
    const invoice = await findInvoice(trx, scope, invoiceId, { forUpdate: true });
    if (!invoice) throw notFound("invoice", invoiceId);
    assertTransition(invoice.id, invoice.status, "PAID", "paid");
    if (amount !== undefined && amount !== invoice.amountDue) {
      throw unprocessable(
        `Invoice '${invoiceId}' has ${invoice.amountDue} due; partial payments are not supported yet.`,
        "amount",
        `must equal the amount due (${invoice.amountDue})`,
      );
    }
    const payments = await store.paymentsFor(trx, scope, { invoiceId });
    const pending = payments.find((payment) => payment.status === "PENDING");
    if (pending) {
      throw new AforoError(
        "payment-in-progress",
        `Payment '${pending.id}' of invoice '${invoiceId}' is with ${pending.provider}; wait for its outcome.`,
        { extensions: { payment_id: pending.id } },
      );
    }
    return invoice;
  }

  async #methodFor(
    db: Kysely<Database>,
    scope: TenantScope,
    customerId: string,
    paymentMethodId: string | undefined,
  ): Promise<PaymentMethod> {
    if (paymentMethodId !== undefined) {
      const method = await store.findMethod(db, scope, paymentMethodId);
      if (!method || method.customerId !== customerId || method.removedAt) {
        throw unprocessable(
          `No payment method '${paymentMethodId}' is saved for customer '${customerId}'.`,
          "payment_method_id",
          "not a saved method of the invoice's customer",
        );
      }
      return method;
    }
    const method = await store.defaultMethod(db, scope, customerId);
    if (!method) {
      throw unprocessable(
        `Customer '${customerId}' has no default payment method to charge.`,
        "method",
        "the customer has no default payment method (POST /v1/customers/{id}/payment_methods)",
      );
    }
    return method;
  }

  // ---- The background pass ------------------------------------------------------------------------

  /**
   * Everything time or a lost process left to do, at `now`: cycles for newly collectable invoices,
   * due dunning attempts, stale PENDING payments, top-up requests, and subscriptions whose state
   * does not reflect their dunning yet.
   */
  runDue(now: Date = this.#clock.now()): Promise<RunDueResult> {
    return this.#serially(() => this.#runDue(now));
  }

  /** Background work of this process runs one piece at a time (other processes: row locks). */
  #serially<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#running.catch(() => undefined).then(work);
    this.#running = run;
    return run;
  }

  async #runDue(now: Date): Promise<RunDueResult> {
    const dunning = this.#dunning;
    const result: RunDueResult = {
      cyclesStarted: 0,
      attempts: 0,
      resumed: 0,
      topUps: 0,
      subscriptionsSynced: 0,
    };
    await dunning.closeSettledElsewhere(now, BATCH);
    for (const { scope, value } of await store.collectableInvoices(this.#db, BATCH)) {
      if (await dunning.startCycle(scope, value, now)) result.cyclesStarted += 1;
    }
    result.attempts = await this.#each(
      (limit) => store.dueCycles(this.#db, now, limit),
      (scope, id) => dunning.attempt(scope, id, now),
    );
    const stale = new Date(now.getTime() - STALE_PENDING_MS);
    result.resumed = await this.#each(
      (limit) => store.stalePayments(this.#db, stale, limit),
      (scope, id) => dunning.resume(scope, id),
    );
    result.topUps = await this.#each(
      (limit) => store.pendingTopUps(this.#db, limit),
      (scope, id) => this.#topUps.collect(scope, id),
    );
    result.subscriptionsSynced = await this.#each(
      (limit) => store.unsyncedSubscriptions(this.#db, limit),
      async (scope, id) => {
        await dunning.syncSubscription(scope, id);
        return true;
      },
    );
    return result;
  }

  /** Works every item the query finds, each once per pass; a failing item is retried next pass. */
  async #each(
    find: (limit: number) => Promise<store.Scoped<string>[]>,
    work: (scope: TenantScope, id: string) => Promise<boolean>,
  ): Promise<number> {
    const seen = new Set<string>();
    let worked = 0;
    for (;;) {
      const batch = (await find(BATCH + seen.size)).filter((item) => !seen.has(item.value));
      if (batch.length === 0) return worked;
      for (const item of batch) {
        seen.add(item.value);
        if (await work(item.scope, item.value).catch(() => false)) worked += 1;
      }
    }
  }
}
