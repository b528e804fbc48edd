import { type Kysely, type RawBuilder, sql } from "kysely";
import type { Database } from "../../../db/schema.ts";
import type { TenantScope } from "../../../http/route-config.ts";
import type { Aggregation } from "../../catalog/domain/billable-unit.ts";
import { averageOf, canonicalDecimal } from "../../metering/domain/usage-query.ts";

export interface PeriodUsageSelection {
  customerId: string;
  billableUnitId: string;
  aggregation: Aggregation;
  range: { from: Date; to: Date };
  /** Late events (kept for reconciliation, not counted) to aggregate with the period's usage. */
  including: readonly string[];
}

/**
 * A closed period's usage of one unit as its invoices have billed it so far: the counted events
 * (what the period's invoice read through metering) plus the late events already adjusted on a
 * later invoice, plus `including`. Recomputed from the events rather than read back from the
 * closed invoice's lines because a line holds the billable quantity (after allowance and caps),
 * and because MAX, LATEST, UNIQUE, AVG and PERCENTILE_95 cannot be combined from a total: only the
 * events give the exact before/after pair for every aggregation. The aggregates mirror metering's
 * raw-event path (store/usage.ts aggregateEvents), so "before" is the quantity the invoice rated.
 */
export async function periodQuantity(
  db: Kysely<Database>,
  scope: TenantScope,
  selection: PeriodUsageSelection,
): Promise<string> {
  const including =
    selection.including.length === 0
      ? sql`false`
      : sql`e.id in (${sql.join(selection.including.map((id) => sql`${id}`))})`;
  const { rows } = await sql<{ value: string | null; sum?: string | null; count?: string | null }>`
    select ${aggregateOf(selection.aggregation)}
    from usage_events e
    where e.tenant_id = ${scope.tenantId} and e.mode = ${scope.mode}
      and e.customer_id = ${selection.customerId}
      and e.billable_unit_id = ${selection.billableUnitId}
      and e.occurred_at >= ${selection.range.from.toISOString()}::timestamptz
      and e.occurred_at < ${selection.range.to.toISOString()}::timestamptz
      and (
        e.counted
        or exists (select 1 from usage_adjustments a where a.event_id = e.id and a.tenant_id = e.tenant_id)
        or ${including}
      )
  `.execute(db);
  const row = rows[0];
  if (!row) return "0";
  if (selection.aggregation === "AVG") return averageOf(row.sum ?? "0", row.count ?? "0");
  return canonicalDecimal(row.value);
}

function aggregateOf(aggregation: Aggregation): RawBuilder<unknown> {
  switch (aggregation) {
    case "COUNT":
      return sql`count(*)::text as value`;
    case "SUM":
      return sql`sum(e.value)::text as value`;
    case "MAX":
      return sql`max(e.value)::text as value`;
    case "AVG":
      return sql`null as value, sum(e.value)::text as sum, count(*)::text as count`;
    case "LATEST":
      return sql`((array_agg(e.value order by e.occurred_at desc, e.id desc))[1])::text as value`;
    case "UNIQUE":
      return sql`count(distinct e.unique_value)::text as value`;
    case "PERCENTILE_95":
      return sql`(percentile_disc(0.95) within group (order by e.value))::text as value`;
  }
}
