import type { PlanItem } from "@aforo/core";
import type { TenantScope } from "../../http/route-config.ts";
import type { BillableUnit } from "../catalog/domain/billable-unit.ts";
import { UsageCounters } from "../entitlements/counters.ts";
import type { RatePlanVersionCache } from "../pricing/version-cache.ts";
import { subscriptionPeriodAt } from "../subscriptions/domain/lifecycle.ts";
import { entitledStatuses } from "../subscriptions/domain/subscription.ts";
import type { SubscriptionService } from "../subscriptions/service.ts";
import { estimateWithAmounts } from "./domain/revenue-estimator.ts";
import type { EnrichmentSource } from "./service.ts";

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
  /** Per customer, unit and plan: the last period total rated and its amount, so each event rates once. */
  readonly #lastAmounts = new Map<string, { total: string; amount: string }>();

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
  ) {
    const atMs = occurredAt.getTime();
    for (const subscription of this.#subscriptions.listForCustomerCached(scope, customerId)) {
      if (!entitledStatuses.includes(subscription.status) || subscription.startAt.getTime() > atMs) continue;
      for (const pinned of subscription.items) {
        const version = this.#versions.get(pinned.ratePlanId, pinned.version);
        const item = version?.definition.items.find((candidate) => candidate.billable_unit_id === unit.id);
        if (!version || !item) continue;
        const period = subscriptionPeriodAt(subscription, occurredAt);
        const enrichment = {
          subscription_id: subscription.id,
          offering_id: subscription.offeringId,
          rate_plan_id: pinned.ratePlanId,
          rate_plan_version: pinned.version,
          pricing_model: item.model,
          currency: version.definition.currency,
          period_start: period.start.toISOString(),
          period_end: period.end.toISOString(),
        };
        if (!ADDITIVE.has(unit.aggregation))
          return { enrichment, estimatedRevenue: null, estimatedCost: null };
        const key = UsageCounters.key(scope.tenantId, scope.mode, customerId, unit.id);
        const before = this.#counters.used(key, {
          startMs: period.start.getTime(),
          endMs: period.end.getTime(),
        });
        const contribution = unit.aggregation === "COUNT" ? "1" : (value ?? quantity);
        const memoKey = `${key}\u0000${pinned.ratePlanId}:${pinned.version}`;
        const estimate = estimateWithAmounts(
          item as PlanItem,
          String(before),
          contribution,
          version.definition.currency,
          this.#lastAmounts.get(memoKey),
        );
        this.#lastAmounts.set(memoKey, { total: estimate.totalAfter, amount: estimate.amountAfter });
        if (this.#lastAmounts.size > 100_000) this.#lastAmounts.clear();
        return { enrichment, estimatedRevenue: estimate.marginal, estimatedCost: null };
      }
    }
    return { enrichment: {}, estimatedRevenue: null, estimatedCost: null };
  }
}
