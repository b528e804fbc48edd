import { AforoError } from "@aforo/core";
import { type Kysely, sql } from "kysely";
import type { Clock } from "../../clock.ts";
import type { DatabaseHandle } from "../../db/database.ts";
import type { Database } from "../../db/schema.ts";
import { type TakeResult, takeToken } from "../../http/rate-limit/token-bucket.ts";
import type { TenantScope } from "../../http/route-config.ts";
import type { ApiKeyService } from "../api-keys/service.ts";
import type { CatalogService } from "../catalog/service.ts";
import type { CustomerService } from "../customers/service.ts";
import type { MeterEventInput } from "../metering/domain/event-input.ts";
import type { MeteringService } from "../metering/service.ts";
import { type EventRow, scopedKeyOf } from "../metering/writer.ts";
import type { PricingService } from "../pricing/service.ts";
import { subscriptionPeriodAt } from "../subscriptions/domain/lifecycle.ts";
import { entitledStatuses, type Subscription } from "../subscriptions/domain/subscription.ts";
import type { SubscriptionService } from "../subscriptions/service.ts";
import { DecisionAudit } from "./audit.ts";
import { UsageCounters } from "./counters.ts";
import { type Decision, decide, type MeteredUsage } from "./domain/decision.ts";
import {
  buildSnapshot,
  type EntitledPlan,
  type EntitlementSnapshot,
  type FeatureGrant,
} from "./domain/snapshot.ts";
import { fixedWindow, hourStart, minuteStart, type Window } from "./domain/windows.ts";

export interface CanAccessInput {
  customer_id?: string | undefined;
  api_key?: string | undefined;
  feature: string;
  quantity?: number | undefined;
  consume?: boolean | undefined;
  /** Names the usage a consuming check records, so a retried check is not counted twice. */
  idempotency_key?: string | undefined;
}

export interface CanAccessOutcome {
  decision: Decision;
  customerId: string;
  planName: string | null;
  snapshot: EntitlementSnapshot;
}

export interface Dependencies {
  keys: ApiKeyService;
  customers: CustomerService;
  catalog: CatalogService;
  pricing: PricingService;
  subscriptions: SubscriptionService;
  metering: MeteringService;
}

interface Bucket {
  tokens: number;
  updatedAtMs: number;
}

/**
 * The edge: decides allow / throttle / block from memory only. Snapshots are built from the
 * subscriptions, plan versions and wallet state held in memory, cached per customer and dropped the
 * moment anything they depend on changes; usage counters are fed by every committed event.
 */
export class EntitlementService {
  /** Rollup hours read per query when counters are rebuilt (a test pages with fewer). */
  static rebuildPageRows = 50_000;
  readonly counters = new UsageCounters();
  readonly audit: DecisionAudit;
  readonly #clock: Clock;
  readonly #deps: Dependencies;
  readonly #snapshots = new Map<string, EntitlementSnapshot>();
  readonly #buckets = new Map<string, Bucket>();
  /** Idempotency keys of usage a consuming check already counted: metering must not count it again. */
  readonly #preCounted = new Set<string>();
  readonly #walletEmpty = new Set<string>();
  readonly #pending = new Set<Promise<void>>();
  #sequence = 0;

  constructor(database: DatabaseHandle, clock: Clock, deps: Dependencies) {
    this.#clock = clock;
    this.#deps = deps;
    this.audit = new DecisionAudit(database, clock);
    deps.metering.onAccepted((rows) => this.#count(rows));
    // A version made by another process can arrive after a snapshot that pins it was built.
    deps.pricing.versions.onLoaded(() => this.#snapshots.clear());
    deps.subscriptions.onChange((subscription) =>
      this.invalidate(subscription.tenantId, subscription.mode, subscription.customerId),
    );
  }

  /** Rebuilds the counters from the database; call before serving traffic. */
  async start(): Promise<() => Promise<void>> {
    await this.#rebuildCounters();
    const stopAudit = await this.audit.start();
    return async () => {
      await stopAudit();
    };
  }

  invalidate(tenantId: string, mode: string, customerId: string): void {
    this.#snapshots.delete(snapshotKey(tenantId, mode, customerId));
  }

  /** Prepaid escrow: wallets say when a BLOCK wallet is empty or funded again. */
  setWalletEmpty(scope: TenantScope, customerId: string, empty: boolean): void {
    const key = snapshotKey(scope.tenantId, scope.mode, customerId);
    if (empty) this.#walletEmpty.add(key);
    else this.#walletEmpty.delete(key);
    this.#snapshots.delete(key);
  }

  /** The decision, from memory. Throws only for a customer or key that cannot be resolved. */
  canAccess(scope: TenantScope, input: CanAccessInput): CanAccessOutcome {
    const customerId = this.#resolveCustomer(scope, input);
    const snapshot = this.snapshot(scope, customerId);
    const quantity = input.quantity ?? 1;
    const nowMs = this.#clock.now().getTime();
    const grant = snapshot.features.get(input.feature);
    let usage: MeteredUsage | undefined;
    let counterKey: string | undefined;
    let window: Window | undefined;
    if (grant?.type === "metered") {
      window = this.#windowFor(grant, snapshot, nowMs);
      counterKey = UsageCounters.key(scope.tenantId, scope.mode, customerId, grant.billableUnitId);
      usage = { used: this.counters.used(counterKey, window), windowEndMs: window.endMs };
    }
    let decision = decide(snapshot, input.feature, quantity, input.consume === true, usage);
    if (decision.allowed && grant?.type === "rate_limit")
      decision = this.#rateLimit(scope, customerId, grant, decision, nowMs);
    if (decision.consume && grant?.type === "metered" && counterKey) {
      this.counters.add(counterKey, nowMs, quantity);
      this.#recordConsumption(scope, customerId, grant, quantity, input.idempotency_key, counterKey, nowMs);
    }
    this.audit.record(scope, customerId, input.feature, quantity, decision);
    return { decision, customerId, planName: snapshot.planNames[0] ?? null, snapshot };
  }

  /** Every feature the customer's entitled subscriptions grant, with usage. */
  entitlementsOf(scope: TenantScope, customerRef: string) {
    const customerId = this.#resolveCustomer(scope, { customer_id: customerRef, feature: "" });
    const snapshot = this.snapshot(scope, customerId);
    const nowMs = this.#clock.now().getTime();
    return {
      customerId,
      snapshot,
      features: [...snapshot.features.values()].map((grant) => {
        if (grant.type !== "metered") return { grant, used: null, remaining: null, resetAtMs: null };
        const window = this.#windowFor(grant, snapshot, nowMs);
        const used = this.counters.used(
          UsageCounters.key(scope.tenantId, scope.mode, customerId, grant.billableUnitId),
          window,
        );
        return { grant, used, remaining: Math.max(0, grant.limit - used), resetAtMs: window.endMs };
      }),
    };
  }

  snapshot(scope: TenantScope, customerId: string): EntitlementSnapshot {
    const key = snapshotKey(scope.tenantId, scope.mode, customerId);
    const nowMs = this.#clock.now().getTime();
    const cached = this.#snapshots.get(key);
    if (cached && (cached.periodEndMs === null || nowMs < cached.periodEndMs)) return cached;
    const subscriptions = this.#deps.subscriptions
      .listForCustomerCached(scope, customerId)
      .filter((subscription) => isEntitledAt(subscription, nowMs));
    const plans: EntitledPlan[] = subscriptions.flatMap((subscription) => this.#plansOf(subscription, nowMs));
    const snapshot = buildSnapshot(customerId, plans);
    snapshot.walletEmpty = this.#walletEmpty.has(key);
    this.#snapshots.set(key, snapshot);
    return snapshot;
  }

  #plansOf(subscription: Subscription, nowMs: number): EntitledPlan[] {
    const period = subscriptionPeriodAt(subscription, new Date(nowMs));
    return subscription.items.map((item) => {
      const version = this.#deps.pricing.versions.get(item.ratePlanId, item.version);
      return {
        subscriptionId: subscription.id,
        planName: version?.definition.name ?? item.ratePlanId,
        periodStartMs: period.start.getTime(),
        periodEndMs: period.end.getTime(),
        entitlements: version?.definition.entitlements ?? [],
      };
    });
  }

  #windowFor(
    grant: Extract<FeatureGrant, { type: "metered" }>,
    snapshot: EntitlementSnapshot,
    nowMs: number,
  ): Window {
    if (
      grant.reset === "billing_period" &&
      snapshot.periodStartMs !== null &&
      snapshot.periodEndMs !== null
    ) {
      return { startMs: snapshot.periodStartMs, endMs: snapshot.periodEndMs };
    }
    return fixedWindow(grant.reset === "billing_period" ? "day" : grant.reset, nowMs);
  }

  #rateLimit(
    scope: TenantScope,
    customerId: string,
    grant: Extract<FeatureGrant, { type: "rate_limit" }>,
    decision: Decision,
    nowMs: number,
  ): Decision {
    const key = `${snapshotKey(scope.tenantId, scope.mode, customerId)}\u0000${grant.feature}`;
    let bucket = this.#buckets.get(key);
    if (!bucket) {
      bucket = { tokens: grant.burst, updatedAtMs: nowMs };
      this.#buckets.set(key, bucket);
    }
    const result: TakeResult = takeToken(
      bucket,
      { limitPerMinute: (grant.limit * 60) / grant.perSeconds, burst: grant.burst },
      nowMs,
    );
    if (result.allowed)
      return { ...decision, remaining: result.remaining, resetAtMs: result.resetAtSeconds * 1000 };
    return {
      ...decision,
      allowed: false,
      decision: "block",
      reason: "rate_limited",
      remaining: 0,
      resetAtMs: nowMs + result.retryAfterSeconds * 1000,
      consume: false,
    };
  }

  #resolveCustomer(scope: TenantScope, input: CanAccessInput): string {
    if (input.customer_id) {
      const customer = this.#deps.customers.resolveCached(scope, input.customer_id);
      if (customer && customer.status !== "ARCHIVED") return customer.id;
      throw new AforoError("unknown-customer", `No customer '${input.customer_id}' exists in this tenant.`, {
        errors: [{ field: "customer_id", message: `unknown customer '${input.customer_id}'` }],
      });
    }
    if (input.api_key) {
      const key = this.#deps.keys.authenticate(input.api_key);
      if (
        key &&
        key.kind === "consumer" &&
        key.tenantId === scope.tenantId &&
        key.mode === scope.mode &&
        key.customerId
      ) {
        return key.customerId;
      }
      throw new AforoError("key-revoked", "The consumer key is unknown, revoked or expired.", {
        extensions: { allowed: false, decision: "block", reason: "key_revoked", tenant_id: scope.tenantId },
      });
    }
    throw new AforoError("validation-failed", "Send customer_id or api_key.", {
      errors: [{ field: "customer_id", message: "is required (or api_key)" }],
    });
  }

  /**
   * A consuming check records its usage as an event, asynchronously: the decision never waits for
   * the database. The counter was already moved, so metering is told not to count this event again;
   * if the event turns out to be a duplicate (a retried check) or cannot be stored, the counter is
   * moved back.
   */
  #recordConsumption(
    scope: TenantScope,
    customerId: string,
    grant: Extract<FeatureGrant, { type: "metered" }>,
    quantity: number,
    idempotencyKey: string | undefined,
    counterKey: string,
    nowMs: number,
  ): void {
    const unit = this.#deps.catalog.resolveUnitCached(scope, grant.billableUnitId);
    if (!unit) return;
    const base =
      idempotencyKey ?? `can_${nowMs.toString(36)}_${(this.#sequence++).toString(36)}_${process.pid}`;
    // A COUNT unit counts events, so q units of consumption are q events.
    const events =
      unit.aggregation === "COUNT"
        ? Array.from({ length: quantity }, (_, i) => (quantity === 1 ? base : `${base}#${i + 1}`))
        : [base];
    const amount = unit.aggregation === "COUNT" ? 1 : quantity;
    const inputs = events.map((key) => ({
      customer_id: customerId,
      metric_id: unit.id,
      quantity: String(amount),
      event_type: "canAccess",
      timestamp: new Date(nowMs).toISOString(),
      idempotency_key: key,
      properties: unit.field ? { [unit.field]: amount } : {},
    }));
    for (const key of events) this.#preCounted.add(preCountedKey(scope, key));
    // Handed to metering after the answer is sent: the decision never waits for event preparation.
    const handedOver = new Promise<void>((resolve) => {
      setImmediate(() => {
        this.#ingestConsumption(scope, inputs, events, base, amount, counterKey, nowMs).finally(resolve);
      });
    });
    this.#pending.add(handedOver);
    void handedOver.finally(() => this.#pending.delete(handedOver));
  }

  /** Resolves when every consumption recorded so far is committed (shutdown, tests). */
  async settle(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending]);
  }

  #ingestConsumption(
    scope: TenantScope,
    inputs: MeterEventInput[],
    events: string[],
    base: string,
    amount: number,
    counterKey: string,
    nowMs: number,
  ): Promise<void> {
    return this.#deps.metering.ingest(scope, inputs, "api").then(
      (results) => {
        results.forEach((result, index) => {
          const key = events[index] ?? base;
          this.#preCounted.delete(preCountedKey(scope, key));
          if (!result.ok || result.event.status === "DUPLICATE")
            this.counters.add(counterKey, nowMs, -amount);
        });
      },
      () => {
        for (const key of events) this.#preCounted.delete(preCountedKey(scope, key));
        this.counters.add(counterKey, nowMs, -amount * events.length);
      },
    );
  }

  /** The rollups' hours of the last 40 days into the counters, in pages in the primary key's order. */
  async #loadHours(
    db: Kysely<Database>,
    since: string,
    aggregationOf: (tenantId: string, mode: "live" | "test", unitId: string) => string,
  ): Promise<void> {
    let after: (CounterRow & { start: Date }) | undefined;
    for (;;) {
      const from = after;
      const { rows: hours } = await sql<CounterRow & { start: Date; event_count: string; value_sum: string }>`
        select tenant_id, mode, customer_id, billable_unit_id, hour as start,
          sum(event_count)::text as event_count, sum(value_sum)::text as value_sum
        from usage_rollups
        where hour >= ${since}::timestamptz
          ${
            from
              ? sql`and (tenant_id, mode, customer_id, billable_unit_id, hour) >
                  (${from.tenant_id}, ${from.mode}, ${from.customer_id}, ${from.billable_unit_id}, ${new Date(from.start).toISOString()}::timestamptz)`
              : sql``
          }
        group by 1, 2, 3, 4, 5
        order by 1, 2, 3, 4, 5
        limit ${EntitlementService.rebuildPageRows}
      `.execute(db);
      for (const row of hours) {
        const amount =
          aggregationOf(row.tenant_id, row.mode, row.billable_unit_id) === "COUNT"
            ? Number(row.event_count)
            : Number(row.value_sum);
        this.counters.loadHour(counterKeyOf(row), new Date(row.start).getTime(), amount);
      }
      after = hours.at(-1);
      if (hours.length < EntitlementService.rebuildPageRows) break;
    }
  }

  #count(rows: readonly EventRow[]): void {
    for (const row of rows) {
      if (!row.counted) continue;
      const preKey = scopedKeyOf(row.tenantId, row.mode, row.idempotencyKey);
      if (this.#preCounted.has(preKey)) continue;
      const amount = row.value === null ? (row.uniqueValue === null ? 1 : 0) : Number(row.value);
      this.counters.add(
        UsageCounters.key(row.tenantId, row.mode, row.customerId, row.billableUnitId),
        row.occurredAt.getTime(),
        amount,
      );
    }
  }

  /**
   * Hourly rollups for 40 days become the counters, and the current hour is folded into its first
   * minute (see UsageCounters#foldHourIntoMinutes): all a decision can still ask of it, except a
   * quota that resets every minute, whose current minute is read from the events themselves. Both
   * reads are summed by the database (one row per customer, unit and hour or minute, over rollup
   * shards), and the events only for units some plan meters per minute, through the per-unit index:
   * a busy tenant stores millions of events an hour, and reading them made a restart take seconds.
   */
  async #rebuildCounters(): Promise<void> {
    const db = this.#deps.metering.database.db;
    const now = this.#clock.now().getTime();
    this.counters.clear();
    const aggregations = new Map<string, string>();
    const aggregationOf = (tenantId: string, mode: "live" | "test", unitId: string) => {
      const key = `${tenantId}:${mode}:${unitId}`;
      let aggregation = aggregations.get(key);
      if (!aggregation) {
        aggregation =
          this.#deps.catalog.resolveUnitCached({ tenantId, mode }, unitId)?.aggregation ?? "COUNT";
        aggregations.set(key, aggregation);
      }
      return aggregation;
    };
    // In pages, in the rollups' key order (their primary key serves it): 100,000 customers with
    // a month of hourly usage are millions of rows, which fetched at once do not fit in the heap.
    const since = new Date(now - 40 * 24 * 3_600_000).toISOString();
    await db.transaction().execute(async (trx) => {
      // Each page must come from the primary key in its order. Right after a bulk load, before
      // statistics catch up, the planner took another index and sorted everything still to come
      // for every page: 200 pages of 10 million rows took many minutes. Sorting (and JIT, for what
      // is a plain index scan) is ruled out for these reads alone.
      await sql`set local enable_sort = off`.execute(trx);
      await sql`set local enable_incremental_sort = off`.execute(trx);
      await sql`set local jit = off`.execute(trx);
      await this.#loadHours(trx, since, aggregationOf);
    });
    const { rows: minutes } = await sql<CounterRow & { amount: string }>`
      select u.tenant_id, u.mode, e.customer_id, u.id as billable_unit_id,
        date_trunc('minute', e.occurred_at at time zone 'UTC') at time zone 'UTC' as start,
        sum(coalesce(e.value, case when e.unique_value is null then 1 else 0 end))::text as amount
      from (
        select distinct v.tenant_id, v.mode, grant_->>'billable_unit_id' as id
        from rate_plan_versions v
        cross join lateral jsonb_array_elements(v.definition->'entitlements') as grant_
        where grant_->>'type' = 'metered' and grant_->>'reset' = 'minute'
      ) u
      cross join lateral (
        -- By customer (usage_events has no index by unit across customers): the customers the
        -- rollups hold for the unit from this hour on.
        select customer_id, occurred_at, value, unique_value from usage_events e
        where e.tenant_id = u.tenant_id and e.mode = u.mode and e.billable_unit_id = u.id and e.counted
          and e.occurred_at >= ${new Date(minuteStart(now)).toISOString()}::timestamptz
          and e.customer_id = any(array(
            select distinct r.customer_id from usage_rollups r
            where r.tenant_id = u.tenant_id and r.mode = u.mode and r.billable_unit_id = u.id
              and r.hour >= ${new Date(hourStart(now)).toISOString()}::timestamptz
          ))
      ) e
      group by 1, 2, 3, 4, 5
    `.execute(db);
    for (const row of minutes) {
      this.counters.loadMinute(counterKeyOf(row), new Date(row.start).getTime(), Number(row.amount));
    }
    this.counters.foldHourIntoMinutes(hourStart(now));
  }
}

/** A counter's bucket as the rebuild reads it. */
interface CounterRow {
  tenant_id: string;
  mode: "live" | "test";
  customer_id: string;
  billable_unit_id: string;
  start: Date | string;
}

function counterKeyOf(row: CounterRow): string {
  return UsageCounters.key(row.tenant_id, row.mode, row.customer_id, row.billable_unit_id);
}

function snapshotKey(tenantId: string, mode: string, customerId: string): string {
  return `${tenantId}\u0000${mode}\u0000${customerId}`;
}

function preCountedKey(scope: TenantScope, idempotencyKey: string): string {
  return scopedKeyOf(scope.tenantId, scope.mode, idempotencyKey);
}

/** Entitled now: an entitled status, started, and (for a scheduled cancellation) not yet past its end. */
function isEntitledAt(subscription: Subscription, nowMs: number): boolean {
  if (!entitledStatuses.includes(subscription.status) && subscription.status !== "CREATED") return false;
  if (subscription.startAt.getTime() > nowMs) return false;
  if (subscription.status === "CREATED") return true;
  if (subscription.endedAt && subscription.endedAt.getTime() <= nowMs) return false;
  return true;
}
