import type { Kysely } from "kysely";
import type { Database } from "../../db/schema.ts";
import type { TenantScope } from "../../http/route-config.ts";
import type { Period } from "../subscriptions/domain/period.ts";

/** Ids never contain NUL, so joined keys cannot collide. */
function keyOf(scope: TenantScope, customerId: string, unitId: string): string {
  return `${scope.tenantId}\u0000${scope.mode}\u0000${customerId}\u0000${unitId}`;
}

/**
 * Which instants a finalised invoice already covers, per tenant, mode, customer and billable unit,
 * in memory: metering asks it for every event (judgeTiming's `periodClosed`), so an event that
 * arrives for a closed period is kept for reconciliation (not counted) and billed as an adjustment
 * on the next invoice instead of being dropped or billed twice.
 *
 * Each key holds merged [start, end) intervals: consecutive periods collapse into one, so memory
 * grows with customers × units, not with periods.
 */
export class ClosedPeriods {
  readonly #intervals = new Map<string, Array<[startMs: number, endMs: number]>>();

  /** Called after an invoice of `period` is final, for every unit its plan bills. */
  close(scope: TenantScope, customerId: string, period: Period, unitIds: readonly string[]): void {
    for (const unitId of unitIds) this.#add(keyOf(scope, customerId, unitId), period);
  }

  isClosed(scope: TenantScope, customerId: string, unitId: string, at: Date): boolean {
    const intervals = this.#intervals.get(keyOf(scope, customerId, unitId));
    if (!intervals) return false;
    const atMs = at.getTime();
    // Newest last; late events are mostly recent, so scan from the end.
    for (let index = intervals.length - 1; index >= 0; index -= 1) {
      const interval = intervals[index];
      if (interval && interval[0] <= atMs && atMs < interval[1]) return true;
    }
    return false;
  }

  /**
   * Loads the periods invoiced by bill runs that ended after `since` (older instants are beyond
   * the backdating limit and go to reconciliation anyway).
   */
  async load(db: Kysely<Database>, since: Date, pageSize = 5_000): Promise<void> {
    let after: { subscriptionId: string; start: Date } | undefined;
    for (;;) {
      let query = db
        .selectFrom("billed_periods")
        .select([
          "tenant_id",
          "mode",
          "subscription_id",
          "customer_id",
          "period_start",
          "period_end",
          "billable_unit_ids",
        ])
        .where("period_end", ">", since);
      if (after) {
        const { subscriptionId, start } = after;
        query = query.where((eb) =>
          eb.or([
            eb("subscription_id", ">", subscriptionId),
            eb.and([eb("subscription_id", "=", subscriptionId), eb("period_start", ">", start)]),
          ]),
        );
      }
      const rows = await query.orderBy("subscription_id").orderBy("period_start").limit(pageSize).execute();
      for (const row of rows) {
        this.close(
          { tenantId: row.tenant_id, mode: row.mode },
          row.customer_id,
          { start: row.period_start, end: row.period_end },
          row.billable_unit_ids,
        );
      }
      const last = rows.at(-1);
      if (!last || rows.length < pageSize) return;
      after = { subscriptionId: last.subscription_id, start: last.period_start };
    }
  }

  #add(key: string, period: Period): void {
    const startMs = period.start.getTime();
    const endMs = period.end.getTime();
    const intervals = this.#intervals.get(key) ?? [];
    intervals.push([startMs, endMs]);
    intervals.sort((a, b) => a[0] - b[0]);
    const merged: Array<[number, number]> = [];
    for (const interval of intervals) {
      const previous = merged.at(-1);
      if (previous && interval[0] <= previous[1]) previous[1] = Math.max(previous[1], interval[1]);
      else merged.push([interval[0], interval[1]]);
    }
    this.#intervals.set(key, merged);
  }
}
