import type { Kysely, Selectable } from "kysely";
import { fetchPage, type Page, type PageRequest } from "../../db/pagination.ts";
import type { Database } from "../../db/schema.ts";
import type { TenantScope } from "../../http/route-config.ts";
import type { Customer, CustomerStatus } from "./domain.ts";
import type { CustomersTable } from "./tables.ts";

export interface CustomerFilter {
  externalId?: string | undefined;
  email?: string | undefined;
  status?: CustomerStatus | undefined;
}

export function fromDb(row: Selectable<CustomersTable>): Customer {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    mode: row.mode,
    name: row.name,
    email: row.email,
    externalId: row.external_id,
    currency: row.currency,
    address: row.address,
    tax: row.tax,
    metadata: row.metadata,
    status: row.status as CustomerStatus,
    version: row.version,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function toDb(customer: Customer) {
  return {
    name: customer.name,
    email: customer.email,
    external_id: customer.externalId,
    currency: customer.currency,
    address: customer.address ? JSON.stringify(customer.address) : null,
    tax: customer.tax ? JSON.stringify(customer.tax) : null,
    metadata: JSON.stringify(customer.metadata),
    status: customer.status,
    version: customer.version,
    updated_at: customer.updatedAt,
  };
}

export async function insertCustomer(db: Kysely<Database>, customer: Customer): Promise<void> {
  await db
    .insertInto("customers")
    .values({
      id: customer.id,
      tenant_id: customer.tenantId,
      mode: customer.mode,
      created_at: customer.createdAt,
      ...toDb(customer),
    })
    .execute();
}

/** Writes `next` only if the row is still at the version it was read at (else: undefined). */
export async function updateCustomer(
  db: Kysely<Database>,
  scope: TenantScope,
  next: Customer,
): Promise<Customer | undefined> {
  const row = await db
    .updateTable("customers")
    .set(toDb(next))
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("id", "=", next.id)
    .where("version", "=", next.version - 1)
    .returningAll()
    .executeTakeFirst();
  return row && fromDb(row);
}

function scoped(db: Kysely<Database>, scope: TenantScope) {
  return db
    .selectFrom("customers")
    .selectAll()
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode);
}

/** By id, else by external id, in this tenant and mode. */
export async function findCustomer(
  db: Kysely<Database>,
  scope: TenantScope,
  ref: string,
  forUpdate = false,
): Promise<Customer | undefined> {
  let byId = scoped(db, scope).where("id", "=", ref);
  if (forUpdate) byId = byId.forUpdate();
  const row = await byId.executeTakeFirst();
  if (row) return fromDb(row);
  let byExternal = scoped(db, scope).where("external_id", "=", ref);
  if (forUpdate) byExternal = byExternal.forUpdate();
  const external = await byExternal.executeTakeFirst();
  return external && fromDb(external);
}

/** Across tenants: for the directory, which reloads a customer another process changed. */
export async function findCustomerById(db: Kysely<Database>, id: string): Promise<Customer | undefined> {
  const row = await db.selectFrom("customers").selectAll().where("id", "=", id).executeTakeFirst();
  return row && fromDb(row);
}

export async function listCustomers(
  db: Kysely<Database>,
  scope: TenantScope,
  filter: CustomerFilter,
  page: PageRequest,
): Promise<Page<Customer>> {
  let query = scoped(db, scope);
  if (filter.externalId !== undefined) query = query.where("external_id", "=", filter.externalId);
  const email = filter.email;
  if (email !== undefined)
    query = query.where((eb) => eb(eb.fn("lower", ["email"]), "=", email.toLowerCase()));
  if (filter.status !== undefined) query = query.where("status", "=", filter.status);
  const result = await fetchPage(query, "id", page);
  return { data: result.data.map(fromDb), has_more: result.has_more };
}

/** Every customer of every tenant, in id order, one batch after another (for the directory). */
export async function* allCustomers(db: Kysely<Database>, batchSize = 1000): AsyncGenerator<Customer[]> {
  let after: string | undefined;
  for (;;) {
    let query = db.selectFrom("customers").selectAll().orderBy("id", "asc").limit(batchSize);
    if (after !== undefined) query = query.where("id", ">", after);
    const rows = await query.execute();
    if (rows.length === 0) return;
    yield rows.map(fromDb);
    after = rows[rows.length - 1]?.id;
    if (rows.length < batchSize) return;
  }
}
