import type { Kysely, Selectable } from "kysely";
import type { BillableUnitsTable, Database } from "../../../db/schema.ts";
import type { TenantScope } from "../../../http/route-config.ts";
import type { Aggregation, BillableUnit, BillableUnitStatus, UnitFilter } from "../domain/billable-unit.ts";

export function fromDb(row: Selectable<BillableUnitsTable>, productIds: string[]): BillableUnit {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    mode: row.mode,
    key: row.key,
    name: row.name,
    unitLabel: row.unit_label,
    aggregation: row.aggregation as Aggregation,
    field: row.field,
    filters: row.filters as UnitFilter[],
    status: row.status as BillableUnitStatus,
    productIds,
    firstUsedAt: row.first_used_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

async function productIdsOf(db: Kysely<Database>, unitId: string): Promise<string[]> {
  const rows = await db
    .selectFrom("product_billable_units")
    .select("product_id")
    .where("billable_unit_id", "=", unitId)
    .orderBy("product_id")
    .execute();
  return rows.map((row) => row.product_id);
}

export async function findBillableUnit(
  db: Kysely<Database>,
  scope: TenantScope,
  idOrKey: string,
): Promise<BillableUnit | undefined> {
  const row = await db
    .selectFrom("billable_units")
    .selectAll()
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where((eb) => eb.or([eb("id", "=", idOrKey), eb("key", "=", idOrKey)]))
    .executeTakeFirst();
  return row && fromDb(row, await productIdsOf(db, row.id));
}

export async function markUsed(
  db: Kysely<Database>,
  scope: TenantScope,
  unitIds: readonly string[],
  now: Date,
): Promise<void> {
  if (unitIds.length === 0) return;
  await db
    .updateTable("billable_units")
    .set({ first_used_at: now })
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("id", "in", [...unitIds])
    .where("first_used_at", "is", null)
    .execute();
}
