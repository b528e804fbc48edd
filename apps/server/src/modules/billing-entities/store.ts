import { type Kysely, type Selectable, sql } from "kysely";
import { fetchPage, type Page, type PageRequest } from "../../db/pagination.ts";
import type { Database } from "../../db/schema.ts";
import type { TenantScope } from "../../http/route-config.ts";
import type { BillingEntityRecord } from "./domain.ts";
import type { BillingEntitiesTable } from "./tables.ts";

export function fromDb(row: Selectable<BillingEntitiesTable>): BillingEntityRecord {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    mode: row.mode,
    code: row.code,
    name: row.name,
    legalName: row.legal_name,
    baseCurrency: row.base_currency,
    timezone: row.timezone,
    invoicePrefix: row.invoice_prefix,
    isDefault: row.is_default,
    address: row.address,
    taxId: row.tax_id,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function toDb(entity: BillingEntityRecord) {
  return {
    name: entity.name,
    legal_name: entity.legalName,
    timezone: entity.timezone,
    invoice_prefix: entity.invoicePrefix,
    is_default: entity.isDefault,
    address: entity.address ? JSON.stringify(entity.address) : null,
    tax_id: entity.taxId,
    updated_at: entity.updatedAt,
  };
}

function insertValues(entity: BillingEntityRecord) {
  return {
    id: entity.id,
    tenant_id: entity.tenantId,
    mode: entity.mode,
    code: entity.code,
    base_currency: entity.baseCurrency,
    created_at: entity.createdAt,
    ...toDb(entity),
  };
}

export async function insertEntity(db: Kysely<Database>, entity: BillingEntityRecord): Promise<void> {
  await db.insertInto("billing_entities").values(insertValues(entity)).execute();
}

/**
 * Inserts unless a unique constraint (code, prefix, or the one default) is already taken; never
 * raises, so it is safe inside a caller's transaction (a failed statement would abort it).
 */
export async function insertEntityIfAbsent(db: Kysely<Database>, entity: BillingEntityRecord): Promise<void> {
  await db
    .insertInto("billing_entities")
    .values(insertValues(entity))
    .onConflict((oc) => oc.doNothing())
    .execute();
}

export async function updateEntity(
  db: Kysely<Database>,
  scope: TenantScope,
  next: BillingEntityRecord,
): Promise<BillingEntityRecord> {
  const row = await db
    .updateTable("billing_entities")
    .set(toDb(next))
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("id", "=", next.id)
    .returningAll()
    .executeTakeFirstOrThrow();
  return fromDb(row);
}

/** Clears the flag on every other entity of the scope, before `keepId` takes it. */
export async function clearDefault(db: Kysely<Database>, scope: TenantScope, keepId: string): Promise<void> {
  await db
    .updateTable("billing_entities")
    .set({ is_default: false })
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("is_default", "=", true)
    .where("id", "!=", keepId)
    .execute();
}

function scoped(db: Kysely<Database>, scope: TenantScope) {
  return db
    .selectFrom("billing_entities")
    .selectAll()
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode);
}

export async function findEntity(
  db: Kysely<Database>,
  scope: TenantScope,
  id: string,
  forUpdate = false,
): Promise<BillingEntityRecord | undefined> {
  let query = scoped(db, scope).where("id", "=", id);
  if (forUpdate) query = query.forUpdate();
  const row = await query.executeTakeFirst();
  return row && fromDb(row);
}

export async function findDefault(
  db: Kysely<Database>,
  scope: TenantScope,
): Promise<BillingEntityRecord | undefined> {
  const row = await scoped(db, scope).where("is_default", "=", true).executeTakeFirst();
  return row && fromDb(row);
}

export async function listEntities(
  db: Kysely<Database>,
  scope: TenantScope,
  page: PageRequest,
): Promise<Page<BillingEntityRecord>> {
  const result = await fetchPage(scoped(db, scope), "id", page);
  return { data: result.data.map(fromDb), has_more: result.has_more };
}

/**
 * Serialises changes of the default flag within a tenant: the row lock is held until the
 * caller's transaction ends. Without it two requests could both find "no default yet".
 */
export async function lockTenant(db: Kysely<Database>, tenantId: string): Promise<void> {
  await db.selectFrom("tenants").select("id").where("id", "=", tenantId).forUpdate().execute();
}

export async function tenantName(db: Kysely<Database>, tenantId: string): Promise<string | undefined> {
  const row = await db.selectFrom("tenants").select("name").where("id", "=", tenantId).executeTakeFirst();
  return row?.name;
}

export async function hasIssuedNumbers(db: Kysely<Database>, entityId: string): Promise<boolean> {
  const row = await db
    .selectFrom("invoice_sequences")
    .select("year")
    .where("billing_entity_id", "=", entityId)
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}

/**
 * Takes the next number of the entity's year. The upsert locks the counter row until the
 * caller's transaction ends: concurrent finalisations queue behind it, and a rollback returns the
 * number, so the sequence has no gaps.
 */
export async function takeNextNumber(
  db: Kysely<Database>,
  scope: TenantScope,
  entityId: string,
  year: number,
): Promise<bigint> {
  const row = await db
    .insertInto("invoice_sequences")
    .values({
      billing_entity_id: entityId,
      year,
      tenant_id: scope.tenantId,
      mode: scope.mode,
      last_number: 1,
    })
    .onConflict((oc) =>
      oc
        .columns(["billing_entity_id", "year"])
        .doUpdateSet({ last_number: sql<number>`invoice_sequences.last_number + 1` }),
    )
    .returning("last_number")
    .executeTakeFirstOrThrow();
  return BigInt(row.last_number);
}

/**
 * Takes the next `count` numbers of the entity's year at once (a bill run finalises a chunk of
 * invoices in one transaction); returns the first. Same lock and rollback as takeNextNumber.
 */
export async function takeNumberBlock(
  db: Kysely<Database>,
  scope: TenantScope,
  entityId: string,
  year: number,
  count: number,
): Promise<bigint> {
  const row = await db
    .insertInto("invoice_sequences")
    .values({
      billing_entity_id: entityId,
      year,
      tenant_id: scope.tenantId,
      mode: scope.mode,
      last_number: count,
    })
    .onConflict((oc) =>
      oc
        .columns(["billing_entity_id", "year"])
        .doUpdateSet({ last_number: sql<number>`invoice_sequences.last_number + ${count}` }),
    )
    .returning("last_number")
    .executeTakeFirstOrThrow();
  return BigInt(row.last_number) - BigInt(count) + 1n;
}
