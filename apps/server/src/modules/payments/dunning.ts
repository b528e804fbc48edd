import { newId } from "@aforo/core";
import type { Kysely } from "kysely";
import type { Clock } from "../../clock.ts";
import type { DatabaseHandle } from "../../db/database.ts";
import type { Database } from "../../db/schema.ts";
import type { TenantScope } from "../../http/route-config.ts";
import type { ApiKeyService } from "../api-keys/service.ts";
import { findInvoice } from "../billing/store/invoices.ts";
import type { SubscriptionService } from "../subscriptions/service.ts";
import { COLLECTABLE, type Collection, endCycle, isAforoError } from "./collection.ts";
import { attemptDueAt, type DunningCycle, movesTo, subscriptionTarget } from "./domain.ts";
import { type ChargeOutcome, ProviderUnavailable } from "./providers/provider.ts";
import * as store from "./store.ts";

export interface DunningDependencies {
  subscriptions: SubscriptionService;
  keys: ApiKeyService;
  collection: Collection;
  /** The tenant's schedule (days after collection starts), snapshotted by each new cycle. */
  schedule(scope: TenantScope): Promise<number[]>;
}

/**
 * Automatic collection and its retries. A cycle starts when an invoice can be charged to a
 * default method; each attempt goes through the three steps of Collection; the settle step moves
 * the cycle (next attempt, or EXHAUSTED with the invoice UNCOLLECTIBLE). What a cycle asks of its
 * subscription (PAST_DUE, SUSPENDED with its consumer keys, ACTIVE again) is applied after each
 * commit by `syncSubscription`, and re-applied by the background pass until it holds.
 */
export class Dunning {
  readonly #database: DatabaseHandle;
  readonly #clock: Clock;
  readonly #deps: DunningDependencies;
  readonly #syncs = new Map<string, Promise<void>>();

  constructor(database: DatabaseHandle, clock: Clock, dependencies: DunningDependencies) {
    this.#database = database;
    this.#clock = clock;
    this.#deps = dependencies;
  }

  get #db(): Kysely<Database> {
    return this.#database.db;
  }

  /** Starts collecting an invoice: its first attempt at now + the schedule's first day. */
  async startCycle(scope: TenantScope, invoiceId: string, now: Date): Promise<boolean> {
    const scheduleDays = await this.#deps.schedule(scope);
    return this.#db.transaction().execute(async (trx) => {
      const invoice = await findInvoice(trx, scope, invoiceId, { forUpdate: true });
      if (!invoice || !COLLECTABLE.includes(invoice.status) || invoice.amountDue <= 0n) return false;
      const cycle: DunningCycle = {
        id: newId("dunningCycle"),
        tenantId: scope.tenantId,
        mode: scope.mode,
        invoiceId: invoice.id,
        subscriptionId: invoice.subscriptionId,
        customerId: invoice.customerId,
        status: "ACTIVE",
        scheduleDays,
        attempts: 0,
        nextAttemptAt: null,
        lastFailureCode: null,
        lastFailureMessage: null,
        subscriptionSynced: true,
        startedAt: now,
        endedAt: null,
        createdAt: now,
        updatedAt: now,
      };
      cycle.nextAttemptAt = attemptDueAt(cycle, 0);
      return store.insertCycle(trx, cycle);
    });
  }

  /** One due attempt: begin (invoice and cycle locked, a PENDING payment), charge, settle. */
  async attempt(scope: TenantScope, cycleId: string, now: Date): Promise<boolean> {
    const { collection } = this.#deps;
    const peek = await store.findCycle(this.#db, scope, { id: cycleId });
    if (!peek) return false;
    const begun = await this.#db.transaction().execute(async (trx) => {
      // Invoice before cycle, the order every path locks them in.
      const invoice = await findInvoice(trx, scope, peek.invoiceId, { forUpdate: true });
      const cycle = await store.findCycle(trx, scope, { id: cycleId }, { forUpdate: true });
      if (!invoice || !cycle || cycle.status !== "ACTIVE") return undefined;
      if (!cycle.nextAttemptAt || cycle.nextAttemptAt > now) return undefined;
      if (!COLLECTABLE.includes(invoice.status) || invoice.amountDue <= 0n) {
        await store.updateCycle(
          trx,
          endCycle(cycle, invoice.status === "PAID" ? "RECOVERED" : "CLOSED", now),
        );
        return { kind: "decided" as const, subscriptionId: cycle.subscriptionId };
      }
      const payments = await store.paymentsFor(trx, scope, { invoiceId: invoice.id });
      if (payments.some((payment) => payment.status === "PENDING")) return undefined;
      const method = await store.defaultMethod(trx, scope, invoice.customerId);
      if (!method) {
        const failure = { code: "no_payment_method", message: "The customer has no default payment method." };
        await collection.failAttempt(trx, scope, cycle, invoice, failure, now);
        return { kind: "decided" as const, subscriptionId: cycle.subscriptionId };
      }
      const trigger = cycle.attempts === 0 ? "automatic" : "dunning";
      const started = await collection.beginIn(trx, scope, { invoice, method, trigger, cycle });
      // In flight: no other pass picks the cycle up until the outcome schedules the next attempt.
      await store.updateCycle(trx, { ...cycle, nextAttemptAt: null, updatedAt: now });
      return { kind: "started" as const, started };
    });
    if (!begun) return false;
    if (begun.kind === "decided") {
      await this.syncSubscription(scope, begun.subscriptionId).catch(() => undefined);
      return true;
    }
    const outcome = await collection.charge(scope, begun.started).catch((error: unknown) => {
      if (error instanceof ProviderUnavailable) return undefined; // resumed once stale
      throw error;
    });
    if (outcome) await collection.settle(scope, begun.started.payment.id, outcome);
    return true;
  }

  /** A PENDING payment left behind: asks the provider again, with the same idempotency key. */
  async resume(scope: TenantScope, paymentId: string): Promise<boolean> {
    const { collection } = this.#deps;
    const payment = await store.findPayment(this.#db, scope, paymentId);
    if (payment?.status !== "PENDING") return false;
    const method = payment.paymentMethodId
      ? ((await store.findMethod(this.#db, scope, payment.paymentMethodId)) ?? null)
      : null;
    let outcome: ChargeOutcome;
    try {
      const provider = await collection.provider(scope, payment.provider);
      if (provider && payment.providerPaymentId) outcome = await provider.retrieve(payment.providerPaymentId);
      else outcome = await collection.charge(scope, { payment, method });
    } catch (error) {
      if (!(error instanceof ProviderUnavailable)) throw error;
      // Still unknown: try again after another stale interval.
      await store.updatePayment(this.#db, { ...payment, updatedAt: this.#clock.now() });
      return false;
    }
    await collection.settle(scope, payment.id, outcome);
    return true;
  }

  /** Cycles whose invoice was paid some other way (a credit note) or voided end here. */
  async closeSettledElsewhere(now: Date, limit: number): Promise<void> {
    for (const { scope, value } of await store.settledElsewhere(this.#db, limit)) {
      const subscriptionId = await this.#db.transaction().execute(async (trx) => {
        const cycle = await store.findCycle(trx, scope, { id: value.id }, { forUpdate: true });
        if (!cycle || (cycle.status !== "ACTIVE" && cycle.status !== "EXHAUSTED")) return null;
        await store.updateCycle(
          trx,
          endCycle(cycle, value.invoiceStatus === "PAID" ? "RECOVERED" : "CLOSED", now),
        );
        return cycle.subscriptionId;
      });
      if (subscriptionId) await this.syncSubscription(scope, subscriptionId).catch(() => undefined);
    }
  }

  /**
   * Brings the subscription to what its cycles ask (SUSPENDED, PAST_DUE or ACTIVE) and its
   * consumer keys with it (suspended exactly while SUSPENDED). Idempotent; serialised per
   * subscription in this process, and re-checked after applying, so a concurrent change in
   * another process converges instead of being overwritten.
   */
  syncSubscription(scope: TenantScope, subscriptionId: string): Promise<void> {
    const key = `${scope.tenantId}\u0000${scope.mode}\u0000${subscriptionId}`;
    const previous = this.#syncs.get(key) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(() => this.#sync(scope, subscriptionId));
    this.#syncs.set(key, next);
    void next
      .finally(() => {
        if (this.#syncs.get(key) === next) this.#syncs.delete(key);
      })
      .catch(() => undefined);
    return next;
  }

  async #sync(scope: TenantScope, subscriptionId: string): Promise<void> {
    const { subscriptions, keys } = this.#deps;
    for (let round = 0; round < 3; round += 1) {
      const cycles = await store.cyclesOfSubscription(this.#db, scope, subscriptionId);
      const target = subscriptionTarget(cycles);
      let subscription = await subscriptions.get(scope, subscriptionId).catch((error: unknown) => {
        if (isAforoError(error, "not-found")) return undefined;
        throw error;
      });
      if (!subscription) {
        await store.markSynced(this.#db, cycles);
        return;
      }
      try {
        for (const move of movesTo(subscription.status, target)) {
          subscription = await subscriptions.transition(scope, subscriptionId, move.to, move.reason);
        }
      } catch (error) {
        if (isAforoError(error, "invalid-transition")) continue; // it moved meanwhile: look again
        throw error;
      }
      const suspended = subscription.status === "SUSPENDED";
      await keys.setSubscriptionKeysSuspended(scope.tenantId, scope.mode, subscriptionId, suspended);
      const after = await store.cyclesOfSubscription(this.#db, scope, subscriptionId);
      if (subscriptionTarget(after) === target) {
        await store.markSynced(this.#db, after);
        return;
      }
    }
  }
}
