import { type Kysely, type RawBuilder, sql } from "kysely";
import type { Database } from "../../../db/schema.ts";
import type { TenantScope } from "../../../http/route-config.ts";
import type { Aggregation } from "../../catalog/domain/billable-unit.ts";
import type { UsageRange, UsageWindow } from "../domain/usage-query.ts";

/** What is measured: one unit's counted events in [from, to), of one customer or all. */
export interface UsageSelection {
  billableUnitId: string;
  aggregation: Aggregation;
  customerId?: string | undefined;
  /** Only these customers (bill runs read a chunk of customers at once); ignored with customerId. */
  customerIds?: readonly string[] | undefined;
  range: UsageRange;
}

function customerFilter(selection: UsageSelection): RawBuilder<unknown> {
  if (selection.customerId) return sql`and customer_id = ${selection.customerId}`;
  if (selection.customerIds) return sql`and customer_id = any(${[...selection.customerIds]}::text[])`;
  return sql``;
}

/**
 * The raw path's customer condition. Without customers named, they are the ones the hourly rollups
 * hold for the unit in the range's hours (every counted event is folded into its hour's rollup in
 * the same statement that stores it), so the read still walks the per-customer index (tenant, mode,
 * customer, unit, occurred_at), one customer after another. usage_events keeps no index by unit
 * across customers: one index fewer to maintain for every event ingested (migration 0024).
 */
function eventCustomerFilter(scope: TenantScope, selection: UsageSelection): RawBuilder<unknown> {
  if (selection.customerId || selection.customerIds) return customerFilter(selection);
  return sql`and customer_id = any(array(
    select distinct r.customer_id from usage_rollups r
    where r.tenant_id = ${scope.tenantId} and r.mode = ${scope.mode}
      and r.billable_unit_id = ${selection.billableUnitId}
      and r.hour > ${selection.range.from.toISOString()}::timestamptz - interval '1 hour'
      and r.hour < ${selection.range.to.toISOString()}::timestamptz
  ))`;
}

/** How the answer is split: per customer, per UTC window, per property value. None = one total. */
export interface UsageDimensions {
  byCustomer: boolean;
  window: UsageWindow | null;
  groupBy: readonly string[];
}

export interface AggregateRow {
  customerId: string | null;
  /** The UTC bucket's start (not yet cut to the range); null without a window. */
  bucket: Date | null;
  /** One JSON value (or null when absent) per group_by path, in order. */
  groups: unknown[];
  /** NUMERIC text; null when nothing was aggregated. AVG leaves it null and fills sum and count. */
  value: string | null;
  sum: string | null;
  count: string | null;
}

interface SqlRow {
  customer_id?: string;
  window_start?: Date | string;
  value?: string | null;
  sum?: string | null;
  count?: string | null;
  [group: `g${number}`]: unknown;
}

/**
 * Aggregates raw events: exact for every aggregation, any range, any grouping. UNIQUE counts
 * distinct values; PERCENTILE_95 is percentile_disc (nearest rank: the smallest value with at
 * least 95 % of values at or below it); LATEST breaks occurred_at ties by the greater id.
 */
export async function aggregateEvents(
  db: Kysely<Database>,
  scope: TenantScope,
  selection: UsageSelection,
  dimensions: UsageDimensions,
): Promise<AggregateRow[]> {
  const columns = dimensionColumns(dimensions, sql`occurred_at`, true);
  const customer = eventCustomerFilter(scope, selection);
  const result = await sql<SqlRow>`
    select ${sql.join([...columns, rawAggregate(selection.aggregation)])}
    from usage_events
    where tenant_id = ${scope.tenantId} and mode = ${scope.mode}
      and billable_unit_id = ${selection.billableUnitId} and counted ${customer}
      and occurred_at >= ${selection.range.from.toISOString()}::timestamptz
      and occurred_at < ${selection.range.to.toISOString()}::timestamptz
    ${groupByOrdinals(columns.length)}
  `.execute(db);
  return result.rows.map((row) => fromSqlRow(row, dimensions));
}

/**
 * Aggregates the hourly rollups: for COUNT, SUM, MAX, AVG and LATEST over hour-aligned ranges
 * without group_by (the caller checks, see canUseRollups). LATEST takes the newest hour's
 * latest_at from the rollups and then reads the one event at that instant (greatest id wins a
 * tie), so it agrees with the raw path even when concurrent commits folded ties in another order.
 */
export async function aggregateRollups(
  db: Kysely<Database>,
  scope: TenantScope,
  selection: UsageSelection,
  dimensions: UsageDimensions,
): Promise<AggregateRow[]> {
  if (dimensions.groupBy.length > 0) throw new Error("rollups hold no properties to group by");
  const columns = dimensionColumns(dimensions, sql`hour`, false);
  const customer = customerFilter(selection);
  const filter = sql`
    where tenant_id = ${scope.tenantId} and mode = ${scope.mode}
      and billable_unit_id = ${selection.billableUnitId} ${customer}
      and hour >= ${selection.range.from.toISOString()}::timestamptz
      and hour < ${selection.range.to.toISOString()}::timestamptz`;
  if (selection.aggregation !== "LATEST") {
    const result = await sql<SqlRow>`
      select ${sql.join([...columns, rollupAggregate(selection.aggregation)])}
      from usage_rollups ${filter}
      ${groupByOrdinals(columns.length)}
    `.execute(db);
    return result.rows.map((row) => fromSqlRow(row, dimensions));
  }
  // The event at r.latest_at is looked up by customer (see eventCustomerFilter): the customers whose
  // rollups in the range end at that instant.
  const sameCustomer = dimensions.byCustomer
    ? sql`and e.customer_id = r.customer_id`
    : selection.customerId
      ? sql`and e.customer_id = ${selection.customerId}`
      : sql`and e.customer_id = any(array(
          select customer_id from usage_rollups ${filter} and latest_at = r.latest_at
        ))`;
  const result = await sql<SqlRow>`
    with r as (
      select ${sql.join([...columns, sql`max(latest_at) as latest_at`])}
      from usage_rollups ${filter}
      ${groupByOrdinals(columns.length)}
    )
    select r.*, (
      select e.value::text from usage_events e
      where e.tenant_id = ${scope.tenantId} and e.mode = ${scope.mode}
        and e.billable_unit_id = ${selection.billableUnitId} and e.counted
        and e.occurred_at = r.latest_at ${sameCustomer}
      order by e.id desc limit 1
    ) as value
    from r
  `.execute(db);
  return result.rows.map((row) => fromSqlRow(row, dimensions));
}

function dimensionColumns(dimensions: UsageDimensions, time: RawBuilder<unknown>, raw: boolean) {
  const columns: RawBuilder<unknown>[] = [];
  if (dimensions.byCustomer) columns.push(sql`customer_id`);
  if (dimensions.window) {
    // Windows are cut in UTC whatever the session's time zone.
    columns.push(
      sql`date_trunc(${sql.lit(dimensions.window)}, ${time} at time zone 'UTC') at time zone 'UTC' as window_start`,
    );
  }
  if (raw) {
    dimensions.groupBy.forEach((path, index) => {
      columns.push(sql`properties #> ${path.split(".")}::text[] as ${sql.ref(`g${index}`)}`);
    });
  }
  return columns;
}

/** By position: a parameterised expression written twice would be two different expressions. */
function groupByOrdinals(count: number): RawBuilder<unknown> {
  if (count === 0) return sql``;
  return sql.raw(`group by ${Array.from({ length: count }, (_, i) => i + 1).join(", ")}`);
}

function rawAggregate(aggregation: Aggregation): RawBuilder<unknown> {
  switch (aggregation) {
    case "COUNT":
      return sql`count(*)::text as value`;
    case "SUM":
      return sql`sum(value)::text as value`;
    case "MAX":
      return sql`max(value)::text as value`;
    case "AVG":
      return sql`sum(value)::text as sum, count(*)::text as count`;
    case "LATEST":
      return sql`((array_agg(value order by occurred_at desc, id desc))[1])::text as value`;
    case "UNIQUE":
      return sql`count(distinct unique_value)::text as value`;
    case "PERCENTILE_95":
      return sql`(percentile_disc(0.95) within group (order by value))::text as value`;
  }
}

function rollupAggregate(aggregation: Aggregation): RawBuilder<unknown> {
  switch (aggregation) {
    case "COUNT":
      return sql`sum(event_count)::text as value`;
    case "SUM":
      return sql`sum(value_sum)::text as value`;
    case "MAX":
      return sql`max(value_max)::text as value`;
    case "AVG":
      return sql`sum(value_sum)::text as sum, sum(event_count)::text as count`;
    default:
      throw new Error(`the rollups cannot answer ${aggregation}`);
  }
}

function fromSqlRow(row: SqlRow, dimensions: UsageDimensions): AggregateRow {
  return {
    customerId: row.customer_id ?? null,
    bucket: row.window_start === undefined || row.window_start === null ? null : new Date(row.window_start),
    groups: dimensions.groupBy.map((_, index) => row[`g${index}`] ?? null),
    value: row.value ?? null,
    sum: row.sum ?? null,
    count: row.count ?? null,
  };
}

/**
 * Refreshes the planner's statistics of the usage tables. Without them (the embedded database has
 * no autovacuum; on PostgreSQL a bulk of fresh events is not analyzed yet) one customer's range
 * is planned on the per-unit indexes and filters every other customer's rows: a period's usage
 * read then costs O(customers). ANALYZE samples a bounded number of rows, so it stays cheap.
 */
export async function analyzeUsageTables(db: Kysely<Database>): Promise<void> {
  await sql`analyze usage_rollups`.execute(db);
  await sql`analyze usage_events`.execute(db);
}
