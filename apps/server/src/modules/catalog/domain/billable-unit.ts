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

/**
 * Lower case, starting with a letter, up to 64 characters. `bu_` is reserved: units are looked up
 * by id or key in one query, and a key that looked like an id could shadow another unit.
 */
export const BILLABLE_UNIT_KEY_PATTERN = "^[a-z][a-z0-9_.-]{0,63}$";
const keyPattern = new RegExp(BILLABLE_UNIT_KEY_PATTERN);

export function isValidUnitKey(key: string): boolean {
  return keyPattern.test(key) && !key.startsWith("bu_");
}

/** COUNT counts events; these aggregate a number, from `field` or else the event's `quantity`. */
export const numericAggregations: readonly Aggregation[] = ["SUM", "MAX", "AVG", "LATEST", "PERCENTILE_95"];

export interface UnitDefinitionError {
  field: string;
  message: string;
}

/** Rules between `aggregation` and `field` that a schema cannot express. */
export function checkAggregationField(aggregation: Aggregation, field: string | null): UnitDefinitionError[] {
  if (aggregation === "UNIQUE" && field === null) {
    return [{ field: "field", message: "UNIQUE counts distinct values of a field: name the field" }];
  }
  return [];
}

/**
 * Changing what a unit measures after it has been used would silently re-rate usage already
 * recorded; callers answer 409 `resource-in-use` when this returns changed fields.
 */
export function frozenFieldsChanged(
  unit: Pick<BillableUnit, "aggregation" | "field" | "firstUsedAt">,
  change: { aggregation?: Aggregation | undefined; field?: string | null | undefined },
): ("aggregation" | "field")[] {
  if (unit.firstUsedAt === null) return [];
  const changed: ("aggregation" | "field")[] = [];
  if (change.aggregation !== undefined && change.aggregation !== unit.aggregation)
    changed.push("aggregation");
  if (change.field !== undefined && change.field !== unit.field) changed.push("field");
  return changed;
}
