import type { Kysely, Selectable } from "kysely";
import { fetchPage, type Page, type PageRequest } from "../../db/pagination.ts";
import type { Database, TenantsTable } from "../../db/schema.ts";
import type { Tenant } from "./domain.ts";

export function fromDb(row: Selectable<TenantsTable>): Tenant {
  const rateLimits = row.settings.rate_limits as Tenant["rateLimits"];
  return { id: row.id, slug: row.slug, name: row.name, rateLimits, createdAt: row.created_at };
}

export async function insertTenant(db: Kysely<Database>, tenant: Tenant): Promise<void> {
  await db
    .insertInto("tenants")
    .values({
      id: tenant.id,
      slug: tenant.slug,
      name: tenant.name,
      settings: JSON.stringify(tenant.rateLimits ? { rate_limits: tenant.rateLimits } : {}),
    })
    .execute();
}

export async function findTenant(db: Kysely<Database>, idOrSlug: string): Promise<Tenant | undefined> {
  const row = await db
    .selectFrom("tenants")
    .selectAll()
    .where((eb) => eb.or([eb("id", "=", idOrSlug), eb("slug", "=", idOrSlug)]))
    .executeTakeFirst();
  return row && fromDb(row);
}

export async function slugExists(db: Kysely<Database>, slug: string): Promise<boolean> {
  return Boolean(await db.selectFrom("tenants").select("id").where("slug", "=", slug).executeTakeFirst());
}

export async function listTenants(db: Kysely<Database>, page: PageRequest): Promise<Page<Tenant>> {
  const result = await fetchPage(db.selectFrom("tenants").selectAll(), "id", page);
  return { data: result.data.map(fromDb), has_more: result.has_more };
}

export async function updateTenant(
  db: Kysely<Database>,
  id: string,
  changes: { name?: string; rateLimits?: Tenant["rateLimits"] },
): Promise<Tenant | undefined> {
  const current = await db
    .selectFrom("tenants")
    .selectAll()
    .where("id", "=", id)
    .forUpdate()
    .executeTakeFirst();
  if (!current) return undefined;
  const settings = { ...current.settings };
  if (changes.rateLimits !== undefined) settings.rate_limits = changes.rateLimits;
  const row = await db
    .updateTable("tenants")
    .set({ name: changes.name ?? current.name, settings: JSON.stringify(settings) })
    .where("id", "=", id)
    .returningAll()
    .executeTakeFirstOrThrow();
  return fromDb(row);
}
