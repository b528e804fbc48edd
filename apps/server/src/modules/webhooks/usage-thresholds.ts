import type { Clock } from "../../clock.ts";
import type { DatabaseHandle } from "../../db/database.ts";
import type { TenantScope } from "../../http/route-config.ts";
import type { EntitlementService } from "../entitlements/service.ts";
import type { EventRow } from "../metering/writer.ts";
import { reachedThresholds } from "./domain.ts";
import type { WebhookPublisher } from "./publisher.ts";
import * as store from "./store.ts";

const EVENT = "usage.threshold_reached";
/** Announced thresholds remembered in memory; beyond this, those of ended periods are dropped. */
const MEMORY_LIMIT = 10_000;

interface Dependencies {
  entitlements: Pick<EntitlementService, "entitlementsOf">;
  webhooks: WebhookPublisher & {
    listens(scope: TenantScope, type: typeof EVENT): Promise<boolean>;
  };
}

/**
 * usage.threshold_reached: when a customer's usage of a metered feature reaches 80% and 100% of
 * its limit for the current window (billing period, day, hour, minute), once per threshold and
 * window. Metering tells it of every committed batch; the callback only notes which customers
 * moved (a set insert), and the check runs on a later turn of the event loop, after the sender was
 * answered, reading the edge's in-memory counters (the same numbers canAccess decides with). Only
 * tenants with an endpoint listening for the event are looked at. The database decides "once":
 * the insert into webhook_usage_thresholds that wins publishes, in the same transaction, so
 * several processes and restarts announce each threshold once.
 */
export class UsageThresholdWatcher {
  readonly #database: DatabaseHandle;
  readonly #clock: Clock;
  readonly #deps: Dependencies;
  /** tenant \0 mode → customers whose usage moved since the last check. */
  readonly #moved = new Map<string, { scope: TenantScope; customers: Set<string> }>();
  /** Thresholds already announced (key → the window's end), so they are not asked of the database. */
  readonly #announced = new Map<string, number>();
  #running: Promise<void> | undefined;

  constructor(database: DatabaseHandle, clock: Clock, deps: Dependencies) {
    this.#database = database;
    this.#clock = clock;
    this.#deps = deps;
  }

  /** Metering's committed-batch callback: notes who moved; never waits, never throws. */
  observe(rows: readonly EventRow[]): void {
    for (const row of rows) {
      if (!row.counted) continue;
      const key = `${row.tenantId}\u0000${row.mode}`;
      let entry = this.#moved.get(key);
      if (!entry) {
        entry = { scope: { tenantId: row.tenantId, mode: row.mode }, customers: new Set() };
        this.#moved.set(key, entry);
      }
      entry.customers.add(row.customerId);
    }
    if (this.#moved.size > 0 && !this.#running) {
      this.#running = new Promise<void>((resolve) => setImmediate(resolve))
        .then(() => this.#drain())
        .finally(() => {
          this.#running = undefined;
          // Usage noted while the last check was finishing.
          if (this.#moved.size > 0) this.observe([]);
        });
    }
  }

  /** Resolves once every noted movement was checked (shutdown, tests). */
  async settle(): Promise<void> {
    while (this.#running) await this.#running;
  }

  async #drain(): Promise<void> {
    while (this.#moved.size > 0) {
      const batch = [...this.#moved.values()];
      this.#moved.clear();
      for (const { scope, customers } of batch) {
        try {
          if (!(await this.#deps.webhooks.listens(scope, EVENT))) continue;
          for (const customerId of customers) await this.#check(scope, customerId);
        } catch {
          // A failed check is not retried: the next usage of the customer checks again.
        }
      }
      this.#prune();
    }
  }

  async #check(scope: TenantScope, customerId: string): Promise<void> {
    let view: ReturnType<Dependencies["entitlements"]["entitlementsOf"]>;
    try {
      view = this.#deps.entitlements.entitlementsOf(scope, customerId);
    } catch {
      return; // archived or unknown meanwhile
    }
    for (const { grant, used, resetAtMs } of view.features) {
      if (grant.type !== "metered" || used === null || resetAtMs === null) continue;
      for (const percent of reachedThresholds(used, grant.limit)) {
        const key = [scope.tenantId, scope.mode, customerId, grant.feature, resetAtMs, percent].join(
          "\u0000",
        );
        if (this.#announced.has(key)) continue;
        const periodEnd = new Date(resetAtMs);
        await this.#database.db.transaction().execute(async (trx) => {
          const now = this.#clock.now();
          const first = await store.recordThreshold(trx, scope, {
            customerId,
            feature: grant.feature,
            periodEnd,
            percent,
            now,
          });
          if (!first) return;
          await this.#deps.webhooks.publish(trx, scope, EVENT, {
            object: "usage_threshold",
            customer_id: customerId,
            feature: grant.feature,
            billable_unit_id: grant.billableUnitId,
            billable_unit: grant.billableUnitKey,
            threshold_percent: percent,
            limit: grant.limit,
            used,
            reset: grant.reset,
            period_end: periodEnd.toISOString(),
            reached_at: now.toISOString(),
          });
        });
        this.#announced.set(key, resetAtMs);
      }
    }
  }

  #prune(): void {
    if (this.#announced.size <= MEMORY_LIMIT) return;
    const nowMs = this.#clock.now().getTime();
    for (const [key, periodEndMs] of this.#announced) if (periodEndMs <= nowMs) this.#announced.delete(key);
  }
}
