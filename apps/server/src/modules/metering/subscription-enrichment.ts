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
  enrichments: Map<string, Readonly<Record<string, unknown>>>;
}

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
      for (const pinned of subscription.items) {
        const version = this.#versions.get(pinned.ratePlanId, pinned.version);
        const item = version?.definition.items.find((candidate) => candidate.billable_unit_id === unit.id);
        if (!version || !item) continue;
        const { period, enrichments } = this.#periodAt(subscription, occurredAt);
        // One frozen object per subscription item and period, shared by its events: the writer
        // serialises each object once.
        const enrichmentKey = `${pinned.ratePlanId}:${pinned.version}:${unit.id}`;
        let enrichment = enrichments.get(enrichmentKey);
        if (!enrichment) {
          enrichment = Object.freeze({
            subscription_id: subscription.id,
            offering_id: subscription.offeringId,
            rate_plan_id: pinned.ratePlanId,
            rate_plan_version: pinned.version,
            pricing_model: item.model,
            currency: version.definition.currency,
            period_start: period.start.toISOString(),
            period_end: period.end.toISOString(),
          });
          enrichments.set(enrichmentKey, enrichment);
        }
        if (!ADDITIVE.has(unit.aggregation))
          return { enrichment, estimatedRevenue: null, estimatedCost: null };
        const key = UsageCounters.key(scope.tenantId, scope.mode, customerId, unit.id);
        const contribution = unit.aggregation === "COUNT" ? "1" : (value ?? quantity);
        // Earlier events of this ingest call are not counted yet: they come before this one.
        const batchKey = `${key}\u0000${period.start.getTime()}`;
        const earlier = batch?.get(batchKey) ?? 0;
        batch?.set(batchKey, earlier + Number(contribution));
        const before =
          this.#counters.used(key, { startMs: period.start.getTime(), endMs: period.end.getTime() }) +
          earlier;
        const estimatedRevenue = estimateMarginalRevenue(
          item as PlanItem,
          before,
          contribution,
          version.definition.currency,
        );
        return { enrichment, estimatedRevenue, estimatedCost: null };
      }
    }
    return { enrichment: {}, estimatedRevenue: null, estimatedCost: null };
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
    const memo = { subscription, period: subscriptionPeriodAt(subscription, at), enrichments: new Map() };
    if (this.#periods.size > 100_000) this.#periods.clear();
    this.#periods.set(subscription.id, memo);
    return memo;
  }
}
