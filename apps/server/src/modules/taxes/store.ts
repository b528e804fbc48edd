import type { Kysely, Selectable } from "kysely";
import { fetchPage, type Page, type PageRequest } from "../../db/pagination.ts";
import type { Database } from "../../db/schema.ts";
import type { TenantScope } from "../../http/route-config.ts";
import type { TaxRate } from "./domain.ts";
import type { TaxRatesTable } from "./tables.ts";

export interface TaxRateFilter {
  active?: boolean | undefined;
  country?: string | undefined;
}

export function fromDb(row: Selectable<TaxRatesTable>): TaxRate {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    mode: row.mode,
    name: row.name,
    country: row.country,
    region: row.region,
    percent: row.percent,
    inclusive: row.inclusive,
    active: row.active,
    description: row.description,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function toDb(rate: TaxRate) {
  return {
    name: rate.name,
    country: rate.country,
    region: rate.region,
    percent: rate.percent,
    inclusive: rate.inclusive,
    active: rate.active,
    description: rate.description,
    updated_at: rate.updatedAt,
  };
}

export async function insertRate(db: Kysely<Database>, rate: TaxRate): Promise<void> {
  await db
    .insertInto("tax_rates")
    .values({
      id: rate.id,
      tenant_id: rate.tenantId,
      mode: rate.mode,
      created_at: rate.createdAt,
      ...toDb(rate),
    })
    .execute();
}

export async function updateRate(db: Kysely<Database>, scope: TenantScope, next: TaxRate): Promise<TaxRate> {
  const row = await db
    .updateTable("tax_rates")
    .set(toDb(next))
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("id", "=", next.id)
    .returningAll()
    .executeTakeFirstOrThrow();
  return fromDb(row);
}

function scoped(db: Kysely<Database>, scope: TenantScope) {
  return db
    .selectFrom("tax_rates")
    .selectAll()
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode);
}

export async function findRate(
  db: Kysely<Database>,
  scope: TenantScope,
  id: string,
  forUpdate = false,
): Promise<TaxRate | undefined> {
  let query = scoped(db, scope).where("id", "=", id);
  if (forUpdate) query = query.forUpdate();
  const row = await query.executeTakeFirst();
  return row && fromDb(row);
}

export async function listRates(
  db: Kysely<Database>,
  scope: TenantScope,
  filter: TaxRateFilter,
  page: PageRequest,
): Promise<Page<TaxRate>> {
  let query = scoped(db, scope);
  if (filter.active !== undefined) query = query.where("active", "=", filter.active);
  if (filter.country !== undefined) query = query.where("country", "=", filter.country);
  const result = await fetchPage(query, "id", page);
  return { data: result.data.map(fromDb), has_more: result.has_more };
}

export async function activeRatesOf(db: Kysely<Database>, scope: TenantScope): Promise<TaxRate[]> {
  const rows = await scoped(db, scope).where("active", "=", true).orderBy("id", "asc").execute();
  return rows.map(fromDb);
}

/** Every active rate of every tenant: the in-memory table calculate() reads from. */
export async function allActiveRates(db: Kysely<Database>): Promise<TaxRate[]> {
  const rows = await db
    .selectFrom("tax_rates")
    .selectAll()
    .where("active", "=", true)
    .orderBy("id", "asc")
    .execute();
  return rows.map(fromDb);
}
