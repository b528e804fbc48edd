import { assert } from "@aforo/core";
import type { Kysely, Selectable } from "kysely";
import { fetchPage, type Page, type PageRequest } from "../../../db/pagination.ts";
import type { Database, ProductsTable } from "../../../db/schema.ts";
import type { TenantScope } from "../../../http/route-config.ts";
import type { Audience, Lifecycle, Product, ProductType, PublishStatus } from "../domain/product.ts";

export function fromDb(row: Selectable<ProductsTable>, billableUnitIds: string[]): Product {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    mode: row.mode,
    name: row.name,
    type: row.type as ProductType,
    description: row.description,
    audience: row.audience as Audience,
    lifecycle: row.lifecycle as Lifecycle,
    status: row.status as PublishStatus,
    metadata: row.metadata as Record<string, string>,
    billableUnitIds,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** The units attached to each product, in id order, for every product asked about. */
export async function unitIdsByProduct(
  db: Kysely<Database>,
  scope: TenantScope,
  productIds: readonly string[],
): Promise<Map<string, string[]>> {
  const byProduct = new Map<string, string[]>(productIds.map((id) => [id, []]));
  if (productIds.length === 0) return byProduct;
  const rows = await db
    .selectFrom("product_billable_units")
    .select(["product_id", "billable_unit_id"])
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("product_id", "in", [...productIds])
    .orderBy("billable_unit_id")
    .execute();
  for (const row of rows) byProduct.get(row.product_id)?.push(row.billable_unit_id);
  return byProduct;
}

export async function insertProduct(db: Kysely<Database>, product: Product): Promise<void> {
  await db
    .insertInto("products")
    .values({
      id: product.id,
      tenant_id: product.tenantId,
      mode: product.mode,
      name: product.name,
      type: product.type,
      description: product.description,
      audience: product.audience,
      lifecycle: product.lifecycle,
      status: product.status,
      metadata: JSON.stringify(product.metadata),
      created_at: product.createdAt,
      updated_at: product.updatedAt,
    })
    .execute();
}

export async function findProduct(
  db: Kysely<Database>,
  scope: TenantScope,
  id: string,
  options: { forUpdate?: boolean } = {},
): Promise<Product | undefined> {
  let query = db
    .selectFrom("products")
    .selectAll()
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("id", "=", id);
  if (options.forUpdate) query = query.forUpdate();
  const row = await query.executeTakeFirst();
  if (!row) return undefined;
  const units = await unitIdsByProduct(db, scope, [row.id]);
  return fromDb(row, units.get(row.id) ?? []);
}

/** Which of these ids are products of this tenant and mode. */
export async function existingProductIds(
  db: Kysely<Database>,
  scope: TenantScope,
  ids: readonly string[],
): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const rows = await db
    .selectFrom("products")
    .select("id")
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("id", "in", [...ids])
    .execute();
  return new Set(rows.map((row) => row.id));
}

export interface ProductFilter {
  status?: PublishStatus | undefined;
  type?: ProductType | undefined;
  lifecycle?: Lifecycle | undefined;
}

export async function listProducts(
  db: Kysely<Database>,
  scope: TenantScope,
  filter: ProductFilter,
  page: PageRequest,
): Promise<Page<Product>> {
  let query = db
    .selectFrom("products")
    .selectAll()
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode);
  if (filter.status) query = query.where("status", "=", filter.status);
  if (filter.type) query = query.where("type", "=", filter.type);
  if (filter.lifecycle) query = query.where("lifecycle", "=", filter.lifecycle);
  const result = await fetchPage(query, "id", page);
  const units = await unitIdsByProduct(
    db,
    scope,
    result.data.map((row) => row.id),
  );
  return { data: result.data.map((row) => fromDb(row, units.get(row.id) ?? [])), has_more: result.has_more };
}

export async function updateProduct(
  db: Kysely<Database>,
  scope: TenantScope,
  product: Product,
): Promise<void> {
  await db
    .updateTable("products")
    .set({
      name: product.name,
      type: product.type,
      description: product.description,
      audience: product.audience,
      lifecycle: product.lifecycle,
      status: product.status,
      metadata: JSON.stringify(product.metadata),
      updated_at: product.updatedAt,
    })
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("id", "=", product.id)
    .execute();
}

/** Adds links that are not there yet; links that exist are left alone. */
export async function linkUnits(
  db: Kysely<Database>,
  scope: TenantScope,
  links: readonly { productId: string; unitId: string }[],
): Promise<void> {
  if (links.length === 0) return;
  await db
    .insertInto("product_billable_units")
    .values(
      links.map((link) => ({
        tenant_id: scope.tenantId,
        mode: scope.mode,
        product_id: link.productId,
        billable_unit_id: link.unitId,
      })),
    )
    .onConflict((conflict) => conflict.columns(["product_id", "billable_unit_id"]).doNothing())
    .execute();
}

export async function unlinkUnits(
  db: Kysely<Database>,
  scope: TenantScope,
  where: {
    productId?: string;
    unitId?: string;
    exceptUnitIds?: readonly string[];
    exceptProductIds?: readonly string[];
  },
): Promise<void> {
  assert(where.productId || where.unitId, "unlinkUnits needs a product or a unit");
  let query = db
    .deleteFrom("product_billable_units")
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode);
  if (where.productId) query = query.where("product_id", "=", where.productId);
  if (where.unitId) query = query.where("billable_unit_id", "=", where.unitId);
  if (where.exceptUnitIds && where.exceptUnitIds.length > 0) {
    query = query.where("billable_unit_id", "not in", [...where.exceptUnitIds]);
  }
  if (where.exceptProductIds && where.exceptProductIds.length > 0) {
    query = query.where("product_id", "not in", [...where.exceptProductIds]);
  }
  await query.execute();
}
