import type { Kysely } from "kysely";
import type { Database } from "../../db/schema.ts";
import type { TenantScope } from "../../http/route-config.ts";
import type { Period } from "../subscriptions/domain/period.ts";

/** Ids never contain NUL, so joined keys cannot collide. */
function keyOf(scope: TenantScope, customerId: string, unitId: string): string {
  return `${scope.tenantId}\u0000${scope.mode}\u0000${customerId}\u0000${unitId}`;
}

/** One subscription period closed to usage: its customer and the units its plans bill. */
export interface PeriodClose {
  customerId: string;
  period: Period;
  unitIds: readonly string[];
}

export interface ClosedPeriodsOptions {
  /** Resolves once the events already judged are committed (metering's settled()). */
  settle?: () => Promise<void>;
  /** Tells other processes of periods being invoiced (closed-period-feed.ts). */
  announce?: (scope: TenantScope, closes: readonly PeriodClose[]) => Promise<void>;
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
  readonly #options: ClosedPeriodsOptions;

  constructor(options: ClosedPeriodsOptions = {}) {
    this.#options = options;
  }

  /**
   * Closes `period` for every unit its plan bills: before a bill run reads its usage
   * (closeForInvoicing), after a draft is finalised (billing), and as other processes announce.
   */
  close(scope: TenantScope, customerId: string, period: Period, unitIds: readonly string[]): void {
    for (const unitId of unitIds) this.#add(keyOf(scope, customerId, unitId), period);
  }

  /**
   * Closes periods about to be invoiced, before their usage is read, tells the other processes,
   * and resolves once the events this process judged before the close are committed. From then on
   * the read sees every event counted here in those periods, and an event that arrives for them is
   * kept for reconciliation and adjusted on the next invoice. Closing after the read instead left a
   * gap: an event judged between the read and the close was counted but on no invoice, ever.
   * (Another process closes them when the notification arrives: an event it counts just before
   * that, and commits after the read, is still on no invoice. docs/deployment.md says so.)
   *
   * If invoicing then fails, the periods stay closed until the processes restart: their events
   * meanwhile are kept for reconciliation and adjusted on the invoice after (late, never lost).
   */
  async closeForInvoicing(scope: TenantScope, closes: readonly PeriodClose[]): Promise<void> {
    if (closes.length === 0) return;
    for (const { customerId, period, unitIds } of closes) this.close(scope, customerId, period, unitIds);
    // Not hearing of it is what a process does today until it restarts; the run goes on.
    await this.#options.announce?.(scope, closes).catch(() => undefined);
    await this.#options.settle?.();
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
