/** How a billable unit turns events into a quantity for a period. */
export const aggregations = ["COUNT", "SUM", "MAX", "UNIQUE", "AVG", "LATEST", "PERCENTILE_95"] as const;
export type Aggregation = (typeof aggregations)[number];

export const filterOperators = [
  "EQUALS",
  "NOT_EQUALS",
  "GREATER_THAN",
  "LESS_THAN",
  "CONTAINS",
  "NOT_CONTAINS",
  "IN",
  "NOT_IN",
] as const;
export type FilterOperator = (typeof filterOperators)[number];

export interface UnitFilter {
  /** A dotted path into the event's `properties` (`tokens.input`). */
  field: string;
  operator: FilterOperator;
  value: unknown;
}

export type BillableUnitStatus = "ACTIVE" | "ARCHIVED";

export interface BillableUnit {
  id: string;
  tenantId: string;
  mode: "live" | "test";
  key: string;
  name: string;
  unitLabel: string;
  aggregation: Aggregation;
  /** Path into `properties` whose value is aggregated; null means `quantity` (and COUNT needs none). */
  field: string | null;
  filters: UnitFilter[];
  status: BillableUnitStatus;
  productIds: string[];
  /** When a rate plan or an accepted event first used the unit; from then on its aggregation is frozen. */
  firstUsedAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}
