import type { Kysely, Selectable } from "kysely";
import { fetchPage, type Page, type PageRequest } from "../../../db/pagination.ts";
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

/** The products each unit is attached to, in id order. */
async function productIdsByUnit(
  db: Kysely<Database>,
  scope: TenantScope,
  unitIds: readonly string[],
): Promise<Map<string, string[]>> {
  const byUnit = new Map<string, string[]>(unitIds.map((id) => [id, []]));
  if (unitIds.length === 0) return byUnit;
  const rows = await db
    .selectFrom("product_billable_units")
    .select(["product_id", "billable_unit_id"])
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("billable_unit_id", "in", [...unitIds])
    .orderBy("product_id")
    .execute();
  for (const row of rows) byUnit.get(row.billable_unit_id)?.push(row.product_id);
  return byUnit;
}

export async function findBillableUnit(
  db: Kysely<Database>,
  scope: TenantScope,
  idOrKey: string,
  options: { forUpdate?: boolean } = {},
): Promise<BillableUnit | undefined> {
  let query = db
    .selectFrom("billable_units")
    .selectAll()
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where((eb) => eb.or([eb("id", "=", idOrKey), eb("key", "=", idOrKey)]));
  if (options.forUpdate) query = query.forUpdate();
  const row = await query.executeTakeFirst();
  if (!row) return undefined;
  const products = await productIdsByUnit(db, scope, [row.id]);
  return fromDb(row, products.get(row.id) ?? []);
}

/** Resolves ids or keys to units of this tenant and mode; the map is keyed by what was asked. */
export async function findUnitsByIdOrKey(
  db: Kysely<Database>,
  scope: TenantScope,
  idsOrKeys: readonly string[],
): Promise<Map<string, Selectable<BillableUnitsTable>>> {
  const found = new Map<string, Selectable<BillableUnitsTable>>();
  if (idsOrKeys.length === 0) return found;
  const refs = [...new Set(idsOrKeys)];
  const rows = await db
    .selectFrom("billable_units")
    .selectAll()
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where((eb) => eb.or([eb("id", "in", refs), eb("key", "in", refs)]))
    .execute();
  for (const row of rows) {
    found.set(row.key, row);
    found.set(row.id, row);
  }
  return found;
}

export async function keyExists(db: Kysely<Database>, scope: TenantScope, key: string): Promise<boolean> {
  const row = await db
    .selectFrom("billable_units")
    .select("id")
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("key", "=", key)
    .executeTakeFirst();
  return row !== undefined;
}

export async function insertUnit(db: Kysely<Database>, unit: BillableUnit): Promise<void> {
  await db
    .insertInto("billable_units")
    .values({
      id: unit.id,
      tenant_id: unit.tenantId,
      mode: unit.mode,
      key: unit.key,
      name: unit.name,
      unit_label: unit.unitLabel,
      aggregation: unit.aggregation,
      field: unit.field,
      filters: JSON.stringify(unit.filters),
      status: unit.status,
      first_used_at: unit.firstUsedAt,
      created_at: unit.createdAt,
      updated_at: unit.updatedAt,
    })
    .execute();
}

export async function updateUnit(
  db: Kysely<Database>,
  scope: TenantScope,
  unit: BillableUnit,
): Promise<void> {
  await db
    .updateTable("billable_units")
    .set({
      name: unit.name,
      unit_label: unit.unitLabel,
      aggregation: unit.aggregation,
      field: unit.field,
      filters: JSON.stringify(unit.filters),
      status: unit.status,
      updated_at: unit.updatedAt,
    })
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("id", "=", unit.id)
    .execute();
}

export interface UnitFilterQuery {
  productId?: string | undefined;
  status?: BillableUnitStatus | undefined;
}

export async function listUnits(
  db: Kysely<Database>,
  scope: TenantScope,
  filter: UnitFilterQuery,
  page: PageRequest,
): Promise<Page<BillableUnit>> {
  let query = db
    .selectFrom("billable_units")
    .selectAll("billable_units")
    .where("billable_units.tenant_id", "=", scope.tenantId)
    .where("billable_units.mode", "=", scope.mode);
  if (filter.status) query = query.where("billable_units.status", "=", filter.status);
  const productId = filter.productId;
  if (productId) {
    query = query.where((eb) =>
      eb.exists(
        eb
          .selectFrom("product_billable_units")
          .select("product_billable_units.billable_unit_id")
          .whereRef("product_billable_units.billable_unit_id", "=", "billable_units.id")
          .where("product_billable_units.product_id", "=", productId),
      ),
    );
  }
  const result = await fetchPage(query, "billable_units.id", page);
  const products = await productIdsByUnit(
    db,
    scope,
    result.data.map((row) => row.id),
  );
  return {
    data: result.data.map((row) => fromDb(row, products.get(row.id) ?? [])),
    has_more: result.has_more,
  };
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

/**
 * Every unit of every tenant, for the in-memory directory built at start. Product links are left
 * empty: the hot paths that read the directory never need them.
 */
export async function listAllUnits(db: Kysely<Database>): Promise<BillableUnit[]> {
  const rows = await db.selectFrom("billable_units").selectAll().execute();
  return rows.map((row) => fromDb(row, []));
}

/** A unit by id in whichever tenant holds it: only for refreshing the directory. */
export async function findUnitById(db: Kysely<Database>, id: string): Promise<BillableUnit | undefined> {
  const row = await db.selectFrom("billable_units").selectAll().where("id", "=", id).executeTakeFirst();
  if (!row) return undefined;
  const products = await productIdsByUnit(db, { tenantId: row.tenant_id, mode: row.mode }, [row.id]);
  return fromDb(row, products.get(row.id) ?? []);
}
