import { AforoError, newId } from "@aforo/core";
import { type Kysely, sql } from "kysely";
import type { Clock } from "../../clock.ts";
import { followChanges } from "../../db/change-feed.ts";
import type { DatabaseHandle } from "../../db/database.ts";
import type { Page, PageRequest } from "../../db/pagination.ts";
import type { Database } from "../../db/schema.ts";
import type { TenantScope } from "../../http/route-config.ts";
import type { ApiKeyRecord } from "../api-keys/registry.ts";
import type { ApiKeyService, IssuedKey } from "../api-keys/service.ts";
import type { CustomerService } from "../customers/service.ts";
import { promotionIsRedeemable, redemptionRefusal } from "../pricing/domain/promotion.ts";
import type { PricingService } from "../pricing/service.ts";
import { noWebhooks, type WebhookPublisher } from "../webhooks/publisher.ts";
import { SubscriptionDirectory } from "./directory.ts";
import {
  advance,
  cancel,
  changePlan,
  isDue,
  isTerminal,
  newSubscription,
  type Outcome,
  type PhaseReason,
  pause,
  resume,
  transition,
} from "./domain/lifecycle.ts";
import {
  entitledStatuses,
  type PinnedPlan,
  type Subscription,
  type SubscriptionStatus,
} from "./domain/subscription.ts";
import { toApi } from "./routes/schemas.ts";
import * as store from "./store.ts";

export type { StoredPhase, SubscriptionFilter } from "./store.ts";

const CHANGES_CHANNEL = "aforo_subscriptions";
const TICK_INTERVAL_MS = 60_000;
/** Ended subscriptions stay in memory this long, so the edge can still explain a refusal. */
const ENDED_RETENTION_MS = 86_400_000;
const TICK_BATCH = 200;

export interface CreateSubscriptionInput {
  /** The customer's id or external id. */
  customerId: string;
  offeringId: string;
  startAt?: Date | undefined;
  billingAnchorDay?: number | undefined;
  promotionCode?: string | undefined;
  priceOverrides?: Record<string, unknown> | undefined;
  metadata?: Record<string, string> | undefined;
}

export interface TickResult {
  /** Subscriptions whose state time changed (started, trial ended, period rolled, expired). */
  advanced: number;
  /** Consumer keys revoked because their subscription had ended. */
  keysRevoked: number;
  /** Subscriptions that failed to advance (retried on the next tick). */
  failed: number;
}

export type SubscriptionListener = (subscription: Subscription) => void;

/** Where a new subscription's period zone comes from (the default billing entity's time zone). */
export interface TimezoneSource {
  defaultTimezone(scope: TenantScope, db?: Kysely<Database>): Promise<string>;
}

interface Committed<T> {
  subscription: Subscription;
  changed: boolean;
  /** It moved into EXPIRED or CANCELLED in this change. */
  ended: boolean;
  keysRevoked: number;
  /** What `inside` returned. */
  value: T | undefined;
}

function unprocessable(field: string, detail: string, message: string): AforoError {
  return new AforoError("unprocessable-entity", detail, { errors: [{ field, message }] });
}

function notFound(id: string): AforoError {
  return new AforoError("not-found", `No subscription with id '${id}' exists in this tenant and mode.`);
}

/**
 * Subscriptions: who is on which pinned plan versions, in which state, in which billing period.
 * Time moves them (start, trial end, period rollover, scheduled expiry): reads apply `advance`
 * lazily and persist it, and `tick` does it for every due subscription every minute. Every change
 * is one transaction that writes the row (version-checked), appends phases and NOTIFYs; after the
 * commit the in-memory directory is updated, listeners hear of it, and an ended subscription's
 * consumer keys are revoked.
 */
export class SubscriptionService {
  readonly directory = new SubscriptionDirectory();
  readonly #database: DatabaseHandle;
  readonly #clock: Clock;
  readonly #pricing: PricingService;
  readonly #customers: CustomerService;
  readonly #keys: ApiKeyService;
  readonly #timezones: TimezoneSource | undefined;
  readonly #listeners = new Set<SubscriptionListener>();
  #ticking: Promise<unknown> | undefined;
  /**
   * Set by the context (wallets start later): grants the offering's initial credits, keyed by the
   * subscription id so they are granted once, and tells the edge whether a prepaid wallet blocks.
   */
  wallets: { subscriptionCreated(scope: TenantScope, subscription: Subscription): Promise<void> } | undefined;
  /** subscription.created|updated|cancelled, in the transaction of the change (set by the context). */
  webhooks: WebhookPublisher = noWebhooks;

  constructor(
    database: DatabaseHandle,
    clock: Clock,
    services: {
      pricing: PricingService;
      customers: CustomerService;
      keys: ApiKeyService;
      /** The billing entities; without them every subscription's periods are cut in UTC. */
      billingEntities?: TimezoneSource;
    },
  ) {
    this.#database = database;
    this.#clock = clock;
    this.#pricing = services.pricing;
    this.#customers = services.customers;
    this.#keys = services.keys;
    this.#timezones = services.billingEntities;
    // Offerings with subscribers refuse edits that would change what those subscribers pay.
    this.#pricing.setSubscriptionProbe((scope, offeringId, db) =>
      store.hasLiveSubscriptions(db, scope, offeringId),
    );
  }

  get #db(): Kysely<Database> {
    return this.#database.db;
  }

  /**
   * Loads live (and recently ended) subscriptions into memory, follows other processes' changes,
   * and ticks every minute. Returns the function that stops all of it.
   */
  async start(): Promise<() => Promise<void>> {
    const unlisten = await followChanges(
      this.#database,
      CHANGES_CHANNEL,
      (id) => void this.#refresh(id),
      async () => {
        const endedSince = new Date(this.#clock.now().getTime() - ENDED_RETENTION_MS);
        for await (const batch of store.liveSubscriptions(this.#db, endedSince)) {
          for (const subscription of batch) this.directory.put(subscription);
        }
      },
    );
    const timer = setInterval(() => {
      if (this.#ticking) return;
      this.#ticking = this.tick()
        .catch(() => undefined) // the next tick retries; a failing database also fails /readyz
        .finally(() => {
          this.#ticking = undefined;
        });
    }, TICK_INTERVAL_MS);
    timer.unref();
    return async () => {
      clearInterval(timer);
      await this.#ticking;
      await unlisten();
    };
  }

  /** Called after every committed change: creation, action, tick, or a reload from another process. */
  onChange(listener: SubscriptionListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  // ---- Memory (the edge) --------------------------------------------------------------------------

  /** From memory only, with time applied (not persisted: `tick` does that). */
  getCached(scope: TenantScope, id: string): Subscription | undefined {
    const found = this.directory.get(scope, id);
    return found && this.#current(found);
  }

  /** From memory only: the customer's subscriptions that have not ended, or ended within a day; oldest first. */
  listForCustomerCached(scope: TenantScope, customerId: string): Subscription[] {
    return this.directory.forCustomer(scope, customerId).map((subscription) => this.#current(subscription));
  }

  #current(subscription: Subscription): Subscription {
    const now = this.#clock.now();
    return isDue(subscription, now) ? advance(subscription, now).subscription : subscription;
  }

  // ---- Reads --------------------------------------------------------------------------------------

  /** Reads from the database; a subscription time has changed is advanced and saved first. */
  async get(scope: TenantScope, id: string): Promise<Subscription> {
    const found = await store.findSubscription(this.#db, scope, id);
    if (!found) throw notFound(id);
    if (!isDue(found, this.#clock.now())) return found;
    return (await this.#mutate(scope, id, this.#clock.now())).subscription;
  }

  async list(
    scope: TenantScope,
    filter: store.SubscriptionFilter,
    page: PageRequest,
  ): Promise<Page<Subscription>> {
    let customerId = filter.customerId;
    if (customerId !== undefined) {
      // An external id works too; an unknown customer simply has no subscriptions.
      const customer = await this.#customers.get(scope, customerId).catch(() => undefined);
      customerId = customer?.id ?? customerId;
    }
    const result = await store.listSubscriptions(this.#db, scope, { ...filter, customerId }, page);
    const now = this.#clock.now();
    const data: Subscription[] = [];
    for (const subscription of result.data) {
      data.push(
        isDue(subscription, now)
          ? (await this.#mutate(scope, subscription.id, now)).subscription
          : subscription,
      );
    }
    // A status filter applies to the stored state; lazily advanced rows may have left it.
    const kept = filter.status === undefined ? data : data.filter((item) => item.status === filter.status);
    return { data: kept, has_more: result.has_more };
  }

  /** Every phase, oldest first. */
  async phases(scope: TenantScope, id: string): Promise<store.StoredPhase[]> {
    await this.get(scope, id);
    return store.listPhases(this.#db, scope, id);
  }

  /** Whether any subscription that has not ended uses the offering. */
  async hasLiveSubscriptions(
    scope: TenantScope,
    offeringId: string,
    db: Kysely<Database> = this.#db,
  ): Promise<boolean> {
    return store.hasLiveSubscriptions(db, scope, offeringId);
  }

  // ---- Creation -----------------------------------------------------------------------------------

  async create(scope: TenantScope, input: CreateSubscriptionInput): Promise<Subscription> {
    const now = this.#clock.now();
    const customer = await this.#customers.get(scope, input.customerId).catch((error: unknown) => {
      if (error instanceof AforoError && error.slug === "not-found") return undefined;
      throw error;
    });
    if (!customer || customer.status === "ARCHIVED") {
      throw new AforoError(
        "unknown-customer",
        `No customer '${input.customerId}' exists in this tenant and mode${customer ? " (it is archived)" : ""}.`,
        { errors: [{ field: "customer_id", message: customer ? "is archived" : "no such customer" }] },
      );
    }
    const plan = await this.#publishedPlan(scope, input.offeringId);
    const subscription = await this.#db.transaction().execute(async (trx) => {
      const promotion =
        input.promotionCode === undefined
          ? undefined
          : await this.#redeemablePromotion(trx, scope, input.promotionCode, plan.offeringId, now);
      const timezone = await this.#timezones?.defaultTimezone(scope, trx);
      const outcome = newSubscription(
        {
          id: newId("subscription"),
          tenantId: scope.tenantId,
          mode: scope.mode,
          customerId: customer.id,
          offeringId: plan.offeringId,
          trialDays: plan.trialDays,
          items: plan.items,
          billingPeriod: plan.billingPeriod,
          currency: plan.currency,
          startAt: input.startAt,
          billingAnchorDay: input.billingAnchorDay,
          promotion,
          priceOverrides: input.priceOverrides,
          metadata: input.metadata,
          timezone,
        },
        now,
      );
      await store.insertSubscription(trx, outcome.subscription);
      await store.appendPhases(trx, outcome.subscription, outcome.phases);
      await this.#notify(trx, outcome.subscription.id);
      await this.webhooks.publish(trx, scope, "subscription.created", toApi(outcome.subscription));
      return outcome.subscription;
    });
    this.#committed(subscription);
    await this.wallets?.subscriptionCreated(scope, subscription);
    return subscription;
  }

  /** A PUBLISHED offering's plans, each pinned at its latest version; period and currency from the first. */
  async #publishedPlan(scope: TenantScope, offeringId: string) {
    const offering = await this.#pricing.getOffering(scope, offeringId).catch((error: unknown) => {
      if (error instanceof AforoError && error.slug === "not-found") return undefined;
      throw error;
    });
    if (!offering) {
      throw unprocessable(
        "offering_id",
        `No offering '${offeringId}' exists in this tenant and mode.`,
        "no such offering",
      );
    }
    if (offering.status !== "PUBLISHED") {
      throw unprocessable(
        "offering_id",
        `Offering '${offeringId}' is ${offering.status}; only PUBLISHED offerings take subscriptions.`,
        `is ${offering.status}, not PUBLISHED`,
      );
    }
    const versions = [];
    for (const ratePlanId of offering.ratePlanIds)
      versions.push(await this.#pricing.getRatePlan(scope, ratePlanId));
    const first = versions[0];
    if (!first)
      throw unprocessable("offering_id", `Offering '${offeringId}' has no rate plans.`, "has no rate plans");
    const items: PinnedPlan[] = versions.map((version) => ({
      ratePlanId: version.id,
      version: version.version,
    }));
    return {
      offeringId: offering.id,
      trialDays: offering.trialDays,
      items,
      billingPeriod: { ...first.definition.billing_period },
      currency: first.definition.currency,
    };
  }

  async #redeemablePromotion(
    trx: Kysely<Database>,
    scope: TenantScope,
    code: string,
    offeringId: string,
    now: Date,
  ): Promise<{ id: string; code: string }> {
    const promotion = await this.#pricing.findPromotionByCode(scope, code, trx);
    if (!promotion) {
      throw unprocessable(
        "promotion_code",
        `No promotion with code '${code}' exists.`,
        "no such promotion code",
      );
    }
    // Serialises redemptions of one code, so max_redemptions holds under concurrency.
    if (this.#database.kind === "postgres") {
      await sql`select pg_advisory_xact_lock(hashtext(${promotion.id}))`.execute(trx);
    }
    const redeemed = await store.countRedemptions(trx, scope, promotion.id);
    if (!promotionIsRedeemable(promotion, now, redeemed, offeringId)) {
      const refusal = redemptionRefusal(promotion, now, redeemed, offeringId) ?? "not redeemable";
      throw unprocessable(
        "promotion_code",
        `Promotion '${promotion.code}' cannot be redeemed: ${refusal.replaceAll("_", " ")}.`,
        `is not redeemable (${refusal})`,
      );
    }
    return { id: promotion.id, code: promotion.code };
  }

  // ---- Actions ------------------------------------------------------------------------------------

  /** Immediately (CANCELLED now, keys revoked), or at period end (EXPIRING_SOON, then EXPIRED). */
  async cancel(
    scope: TenantScope,
    id: string,
    options: { atPeriodEnd?: boolean } = {},
  ): Promise<Subscription> {
    const atPeriodEnd = options.atPeriodEnd ?? false;
    return this.#act(scope, id, (current, now) => cancel(current, now, atPeriodEnd));
  }

  async pause(scope: TenantScope, id: string): Promise<Subscription> {
    return this.#act(scope, id, pause);
  }

  /** PAUSED or EXPIRING_SOON (withdraws the scheduled cancellation) → ACTIVE. */
  async resume(scope: TenantScope, id: string): Promise<Subscription> {
    return this.#act(scope, id, resume);
  }

  /** Re-pins to the latest versions of another PUBLISHED offering's plans now, in the same currency. */
  async changePlan(scope: TenantScope, id: string, offeringId: string): Promise<Subscription> {
    await this.get(scope, id); // an unknown subscription is a 404 before the offering is judged
    const plan = await this.#publishedPlan(scope, offeringId);
    return this.#act(scope, id, (current, now) => {
      if (plan.currency !== current.currency) {
        throw unprocessable(
          "offering_id",
          `Offering '${offeringId}' bills in ${plan.currency}; the subscription bills in ${current.currency}.`,
          `bills in ${plan.currency}, not ${current.currency}`,
        );
      }
      return changePlan(current, now, { offeringId: plan.offeringId, items: plan.items });
    });
  }

  /** Any move the state machine allows, for billing and dunning (PAST_DUE, SUSPENDED, ACTIVE on payment). */
  async transition(
    scope: TenantScope,
    id: string,
    to: SubscriptionStatus,
    reason: PhaseReason,
  ): Promise<Subscription> {
    return this.#act(scope, id, (current, now) => transition(current, to, now, reason));
  }

  async #act(
    scope: TenantScope,
    id: string,
    action: (current: Subscription, now: Date) => Outcome,
  ): Promise<Subscription> {
    return (await this.#mutate(scope, id, this.#clock.now(), action)).subscription;
  }

  // ---- Consumer keys ------------------------------------------------------------------------------

  /** An ak_ key bound to the subscription and its customer; only while the subscription is entitled. */
  async createConsumerKey(
    scope: TenantScope,
    id: string,
    input: { name?: string | undefined } = {},
  ): Promise<IssuedKey> {
    // Under the subscription's row lock: a concurrent cancel waits, then revokes this key too.
    const result = await this.#mutate(scope, id, this.#clock.now(), undefined, async (current, trx) => {
      if (!entitledStatuses.includes(current.status)) {
        throw new AforoError(
          "invalid-transition",
          `Subscription '${id}' is ${current.status}; consumer keys are issued only while it is ${entitledStatuses.join(", ")}.`,
        );
      }
      return this.#keys.create(
        {
          tenantId: scope.tenantId,
          mode: scope.mode,
          kind: "consumer",
          subscriptionId: current.id,
          customerId: current.customerId,
          name: input.name,
        },
        trx,
      );
    });
    if (!result.value) throw new Error("the key was not issued");
    return result.value;
  }

  /** Every consumer key issued for the subscription (revoked ones too), newest first. */
  async listConsumerKeys(scope: TenantScope, id: string): Promise<ApiKeyRecord[]> {
    await this.get(scope, id);
    return store.subscriptionKeys(this.#db, scope, id);
  }

  async #revokeKeys(subscription: Subscription): Promise<number> {
    const scope = { tenantId: subscription.tenantId, mode: subscription.mode };
    const keys = await store.subscriptionKeys(this.#db, scope, subscription.id);
    let revoked = 0;
    for (const key of keys) {
      if (key.revokedAt) continue;
      await this.#keys.revoke(scope.tenantId, scope.mode, key.id);
      revoked += 1;
    }
    return revoked;
  }

  // ---- Time ---------------------------------------------------------------------------------------

  /**
   * Advances every subscription time has changed by `now` (starts, trial ends, period rollovers,
   * scheduled expiries), revokes consumer keys left behind by ended subscriptions, and forgets
   * subscriptions that ended more than a day ago from memory.
   */
  async tick(now: Date = this.#clock.now()): Promise<TickResult> {
    const result: TickResult = { advanced: 0, keysRevoked: 0, failed: 0 };
    const attempted = new Set<string>();
    for (;;) {
      const due = (await store.dueSubscriptions(this.#db, now, TICK_BATCH)).filter(
        (ref) => !attempted.has(ref.id),
      );
      if (due.length === 0) break;
      for (const ref of due) {
        attempted.add(ref.id);
        try {
          const committed = await this.#mutate({ tenantId: ref.tenantId, mode: ref.mode }, ref.id, now);
          if (committed.changed) result.advanced += 1;
          result.keysRevoked += committed.keysRevoked;
        } catch {
          result.failed += 1;
        }
      }
    }
    for (const key of await store.strandedKeys(this.#db, TICK_BATCH)) {
      await this.#keys.revoke(key.tenantId, key.mode, key.id);
      result.keysRevoked += 1;
    }
    this.directory.prune(new Date(now.getTime() - ENDED_RETENTION_MS));
    return result;
  }

  // ---- The one write path -------------------------------------------------------------------------

  /**
   * Locks the row, applies time, then the action; writes the result (version-checked) with its
   * phases and a NOTIFY; then, after commit, updates memory, tells listeners, and revokes the
   * consumer keys of a subscription that has just ended. `inside` runs in the same transaction.
   */
  async #mutate<T = never>(
    scope: TenantScope,
    id: string,
    now: Date,
    action?: (current: Subscription, now: Date) => Outcome,
    inside?: (current: Subscription, trx: Kysely<Database>) => Promise<T>,
  ): Promise<Committed<T>> {
    const committed = await this.#db.transaction().execute(async (trx) => {
      const before = await store.findSubscription(trx, scope, id, true);
      if (!before) throw notFound(id);
      const advanced = advance(before, now);
      let current = advanced.subscription;
      const phases = [...advanced.phases];
      if (action) {
        const outcome = action(current, now);
        current = outcome.subscription;
        phases.push(...outcome.phases);
      }
      let subscription = before;
      if (current !== before) {
        const written = await store.updateSubscription(trx, { ...current, version: before.version + 1 });
        // The row is locked (FOR UPDATE) since it was read, so its version cannot have moved.
        if (!written) throw new Error(`subscription ${id} changed under a row lock`);
        await store.appendPhases(trx, written, phases);
        await this.#notify(trx, id);
        // Ending (CANCELLED, or EXPIRED at a scheduled end) is "cancelled"; any other change "updated".
        const ends = !isTerminal(before.status) && isTerminal(written.status);
        await this.webhooks.publish(
          trx,
          scope,
          ends ? "subscription.cancelled" : "subscription.updated",
          toApi(written),
        );
        subscription = written;
      }
      const value = inside ? await inside(subscription, trx) : undefined;
      return {
        subscription,
        changed: subscription !== before,
        ended: !isTerminal(before.status) && isTerminal(subscription.status),
        value,
      };
    });
    if (committed.changed) this.#committed(committed.subscription);
    // The change is committed whatever happens here; keys left behind are swept by the next tick.
    const keysRevoked = committed.ended ? await this.#revokeKeys(committed.subscription).catch(() => 0) : 0;
    return { ...committed, keysRevoked };
  }

  #committed(subscription: Subscription): void {
    if (this.directory.put(subscription)) this.#emit(subscription);
  }

  #emit(subscription: Subscription): void {
    for (const listener of this.#listeners) {
      try {
        listener(subscription);
      } catch {
        // A failing listener must not undo a committed change nor starve the other listeners.
      }
    }
  }

  async #refresh(id: string): Promise<void> {
    const subscription = await store.findSubscriptionById(this.#db, id).catch(() => undefined);
    if (subscription) this.#committed(subscription);
  }

  /** Inside the writing transaction: listeners hear of the change only once it is committed. */
  async #notify(db: Kysely<Database>, id: string): Promise<void> {
    if (this.#database.kind === "postgres")
      await sql`select pg_notify(${CHANGES_CHANNEL}, ${id})`.execute(db);
  }
}
