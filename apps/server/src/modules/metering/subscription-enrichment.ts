import type { PlanItem } from "@aforo/core";
import type { TenantScope } from "../../http/route-config.ts";
import type { BillableUnit } from "../catalog/domain/billable-unit.ts";
import { UsageCounters } from "../entitlements/counters.ts";
import type { RatePlanVersionCache } from "../pricing/version-cache.ts";
import { subscriptionPeriodAt } from "../subscriptions/domain/lifecycle.ts";
import type { Period } from "../subscriptions/domain/period.ts";
import { entitledStatuses, type Subscription } from "../subscriptions/domain/subscription.ts";
import type { SubscriptionService } from "../subscriptions/service.ts";
import { estimateMarginalRevenue } from "./domain/revenue-estimator.ts";
import type { EnrichmentSource } from "./service.ts";

interface PeriodMemo {
  subscription: Subscription;
  period: Period;
  /** Per billable unit id: what the subscription prices it with this period, or null if nothing. */
  units: Map<string, PricedUnit | null>;
}

/** Everything an event of one unit needs from its subscription's period, worked out once. */
interface PricedUnit {
  item: PlanItem;
  currency: string;
  /** Frozen and shared by the period's events: the writer stores and serialises each object once. */
  enrichment: Readonly<Record<string, unknown>>;
  counterKey: string;
  /** The counter key and the period: where a batch keeps the running total of its earlier events. */
  batchKey: string;
  window: { startMs: number; endMs: number };
}

const NOT_ENRICHED: Readonly<Record<string, unknown>> = Object.freeze({});

/** Aggregations whose period total grows event by event, so one event's marginal revenue exists. */
const ADDITIVE = new Set(["COUNT", "SUM"]);

/**
 * Enrichment at ingest, from memory: the customer's subscription that prices this unit, its pinned
 * plan version, and the event's estimated revenue given the running total of the period (so tiers
 * and allowances apply). Events of the same group commit see the same running total; the estimate
 * is for margin views, invoices are rated from the stored usage.
 */
export class SubscriptionEnrichment implements EnrichmentSource {
  readonly #subscriptions: SubscriptionService;
  readonly #versions: RatePlanVersionCache;
  readonly #counters: UsageCounters;
  /**
   * Per subscription: the period last found, while the subscription is the same object (the
   * directory replaces it on any change). Finding a period is calendar arithmetic in the billing
   * time zone: a third of enrichment's time when it ran for every event.
   */
  readonly #periods = new Map<string, PeriodMemo>();

  constructor(subscriptions: SubscriptionService, versions: RatePlanVersionCache, counters: UsageCounters) {
    this.#subscriptions = subscriptions;
    this.#versions = versions;
    this.#counters = counters;
  }

  enrich(
    scope: TenantScope,
    customerId: string,
    unit: BillableUnit,
    quantity: string,
    occurredAt: Date,
    value: string | null,
    batch?: Map<string, number>,
  ) {
    const atMs = occurredAt.getTime();
    for (const subscription of this.#subscriptions.listForCustomerCached(scope, customerId)) {
      if (!entitledStatuses.includes(subscription.status) || subscription.startAt.getTime() > atMs) continue;
      const memo = this.#periodAt(subscription, occurredAt);
      let priced = memo.units.get(unit.id);
      if (priced === undefined) {
        const found = this.#priceUnit(scope, subscription, memo.period, unit);
        priced = found.priced;
        // Kept only when every pinned plan version was loaded: one still loading may come first
        // and price the unit, so the next event looks again.
        if (found.complete) memo.units.set(unit.id, priced);
      }
      if (!priced) continue;
      const { enrichment } = priced;
      if (!ADDITIVE.has(unit.aggregation)) return { enrichment, estimatedRevenue: null, estimatedCost: null };
      const contribution = unit.aggregation === "COUNT" ? "1" : (value ?? quantity);
      // Earlier events of this ingest call are not counted yet: they come before this one.
      const earlier = batch?.get(priced.batchKey) ?? 0;
      batch?.set(priced.batchKey, earlier + Number(contribution));
      const before = this.#counters.used(priced.counterKey, priced.window) + earlier;
      const estimatedRevenue = estimateMarginalRevenue(priced.item, before, contribution, priced.currency);
      return { enrichment, estimatedRevenue, estimatedCost: null };
    }
    return { enrichment: NOT_ENRICHED, estimatedRevenue: null, estimatedCost: null };
  }

  /**
   * The subscription's item for this unit in this period (null if none), and whether the answer is
   * final: the first pinned version that prices the unit wins, so an unloaded one before it leaves
   * the answer open.
   */
  #priceUnit(
    scope: TenantScope,
    subscription: Subscription,
    period: Period,
    unit: BillableUnit,
  ): { priced: PricedUnit | null; complete: boolean } {
    let pending = false;
    for (const pinned of subscription.items) {
      const version = this.#versions.get(pinned.ratePlanId, pinned.version);
      if (!version) {
        pending = true;
        continue;
      }
      const item = version.definition.items.find((candidate) => candidate.billable_unit_id === unit.id);
      if (!item) continue;
      const counterKey = UsageCounters.key(scope.tenantId, scope.mode, subscription.customerId, unit.id);
      const window = { startMs: period.start.getTime(), endMs: period.end.getTime() };
      const priced: PricedUnit = {
        item: item as PlanItem,
        currency: version.definition.currency,
        enrichment: Object.freeze({
          subscription_id: subscription.id,
          offering_id: subscription.offeringId,
          rate_plan_id: pinned.ratePlanId,
          rate_plan_version: pinned.version,
          pricing_model: item.model,
          currency: version.definition.currency,
          period_start: period.start.toISOString(),
          period_end: period.end.toISOString(),
        }),
        counterKey,
        batchKey: `${counterKey}\u0000${window.startMs}`,
        window,
      };
      return { priced, complete: !pending };
    }
    return { priced: null, complete: !pending };
  }

  #periodAt(subscription: Subscription, at: Date): PeriodMemo {
    const atMs = at.getTime();
    const known = this.#periods.get(subscription.id);
    if (
      known &&
      known.subscription === subscription &&
      known.period.start.getTime() <= atMs &&
      atMs < known.period.end.getTime()
    ) {
      return known;
    }
    const memo = { subscription, period: subscriptionPeriodAt(subscription, at), units: new Map() };
    if (this.#periods.size > 100_000) this.#periods.clear();
    this.#periods.set(subscription.id, memo);
    return memo;
  }
}
