import type { Kysely, Selectable } from "kysely";
import { fetchPage, type Page, type PageRequest } from "../../db/pagination.ts";
import type { ApiKeysTable, Database, Mode } from "../../db/schema.ts";
import type { ApiKeyRecord } from "./registry.ts";

export function fromDb(row: Selectable<ApiKeysTable>): ApiKeyRecord {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    kind: row.kind,
    mode: row.mode,
    name: row.name,
    prefix: row.prefix,
    last4: row.last4,
    keyHash: row.key_hash,
    scopes: row.scopes,
    rateLimits: row.rate_limits ?? undefined,
    subscriptionId: row.subscription_id,
    customerId: row.customer_id,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
    rotatedTo: row.rotated_to,
    createdAt: row.created_at,
    suspendedAt: row.suspended_at,
  };
}

export async function insertKey(db: Kysely<Database>, key: ApiKeyRecord): Promise<void> {
  await db
    .insertInto("api_keys")
    .values({
      id: key.id,
      tenant_id: key.tenantId,
      kind: key.kind,
      mode: key.mode,
      name: key.name,
      prefix: key.prefix,
      last4: key.last4,
      key_hash: key.keyHash,
      scopes: key.scopes,
      rate_limits: key.rateLimits ? JSON.stringify(key.rateLimits) : null,
      subscription_id: key.subscriptionId,
      customer_id: key.customerId,
      expires_at: key.expiresAt,
      revoked_at: key.revokedAt,
      rotated_to: key.rotatedTo,
      created_at: key.createdAt,
    })
    .execute();
}

export async function findKeyByHash(
  db: Kysely<Database>,
  keyHash: string,
): Promise<ApiKeyRecord | undefined> {
  const row = await db.selectFrom("api_keys").selectAll().where("key_hash", "=", keyHash).executeTakeFirst();
  return row && fromDb(row);
}

export async function findTenantKey(
  db: Kysely<Database>,
  tenantId: string,
  mode: Mode,
  id: string,
): Promise<ApiKeyRecord | undefined> {
  const row = await db
    .selectFrom("api_keys")
    .selectAll()
    .where("tenant_id", "=", tenantId)
    .where("mode", "=", mode)
    .where("id", "=", id)
    .executeTakeFirst();
  return row && fromDb(row);
}

export async function listTenantKeys(
  db: Kysely<Database>,
  tenantId: string,
  mode: Mode,
  page: PageRequest,
  kind?: "secret" | "consumer",
): Promise<Page<ApiKeyRecord>> {
  let query = db
    .selectFrom("api_keys")
    .selectAll()
    .where("tenant_id", "=", tenantId)
    .where("mode", "=", mode);
  if (kind) query = query.where("kind", "=", kind);
  const result = await fetchPage(query, "id", page);
  return { data: result.data.map(fromDb), has_more: result.has_more };
}

export async function listUsableKeys(db: Kysely<Database>, now: Date): Promise<ApiKeyRecord[]> {
  const rows = await db
    .selectFrom("api_keys")
    .selectAll()
    .where("revoked_at", "is", null)
    .where((eb) => eb.or([eb("expires_at", "is", null), eb("expires_at", ">", now)]))
    .execute();
  return rows.map(fromDb);
}

export async function updateKey(
  db: Kysely<Database>,
  id: string,
  changes: { expires_at?: Date; revoked_at?: Date; rotated_to?: string },
): Promise<ApiKeyRecord> {
  const row = await db
    .updateTable("api_keys")
    .set(changes)
    .where("id", "=", id)
    .returningAll()
    .executeTakeFirstOrThrow();
  return fromDb(row);
}

/**
 * Suspends (at `at`) or restores (`at` null) the usable consumer keys of a subscription; returns
 * the keys that changed. Revoked keys stay revoked either way.
 */
export async function setSubscriptionKeysSuspended(
  db: Kysely<Database>,
  tenantId: string,
  mode: Mode,
  subscriptionId: string,
  at: Date | null,
): Promise<ApiKeyRecord[]> {
  const rows = await db
    .updateTable("api_keys")
    .set({ suspended_at: at })
    .where("tenant_id", "=", tenantId)
    .where("mode", "=", mode)
    .where("kind", "=", "consumer")
    .where("subscription_id", "=", subscriptionId)
    .where("revoked_at", "is", null)
    .where("suspended_at", at === null ? "is not" : "is", null)
    .returningAll()
    .execute();
  return rows.map(fromDb);
}

export async function countOperatorKeys(db: Kysely<Database>): Promise<number> {
  const row = await db
    .selectFrom("api_keys")
    .select((eb) => eb.fn.countAll<string>().as("count"))
    .where("kind", "=", "operator")
    .executeTakeFirstOrThrow();
  return Number(row.count);
}
