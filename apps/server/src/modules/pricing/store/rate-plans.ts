import type { Kysely } from "kysely";
import { fetchPage, type Page, type PageRequest } from "../../../db/pagination.ts";
import type { Database } from "../../../db/schema.ts";
import type { TenantScope } from "../../../http/route-config.ts";
import type { RatePlanDefinition, RatePlanStatus, RatePlanVersion } from "../domain/rate-plan.ts";

interface VersionRow {
  id: string;
  tenant_id: string;
  mode: "live" | "test";
  latest_version: number;
  status: string;
  created_at: Date;
  version: number;
  definition: RatePlanDefinition;
  version_created_at: Date;
}

export function fromDb(row: VersionRow): RatePlanVersion {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    mode: row.mode,
    version: row.version,
    latestVersion: row.latest_version,
    status: row.status as RatePlanStatus,
    definition: row.definition,
    createdAt: row.created_at,
    versionCreatedAt: row.version_created_at,
  };
}

function versions(db: Kysely<Database>, scope: TenantScope) {
  return db
    .selectFrom("rate_plans as p")
    .innerJoin("rate_plan_versions as v", "v.rate_plan_id", "p.id")
    .select([
      "p.id as id",
      "p.tenant_id as tenant_id",
      "p.mode as mode",
      "p.latest_version as latest_version",
      "p.status as status",
      "p.created_at as created_at",
      "v.version as version",
      "v.definition as definition",
      "v.created_at as version_created_at",
    ])
    .where("p.tenant_id", "=", scope.tenantId)
    .where("p.mode", "=", scope.mode)
    .where("v.tenant_id", "=", scope.tenantId)
    .where("v.mode", "=", scope.mode);
}

export async function insertRatePlan(
  db: Kysely<Database>,
  scope: TenantScope,
  id: string,
  now: Date,
): Promise<void> {
  await db
    .insertInto("rate_plans")
    .values({
      id,
      tenant_id: scope.tenantId,
      mode: scope.mode,
      latest_version: 1,
      status: "ACTIVE",
      created_at: now,
      updated_at: now,
    })
    .execute();
}

/** Versions are only ever inserted; the primary key (rate_plan_id, version) refuses a second writer. */
export async function insertVersion(
  db: Kysely<Database>,
  scope: TenantScope,
  ratePlanId: string,
  version: number,
  definition: RatePlanDefinition,
  unitIds: string[],
  now: Date,
): Promise<void> {
  await db
    .insertInto("rate_plan_versions")
    .values({
      tenant_id: scope.tenantId,
      mode: scope.mode,
      rate_plan_id: ratePlanId,
      version,
      name: definition.name,
      currency: definition.currency,
      definition: JSON.stringify(definition),
      billable_unit_ids: unitIds,
      created_at: now,
    })
    .execute();
}

/** The plan's latest version number, locking the plan row so concurrent new versions queue up. */
export async function lockLatestVersion(
  db: Kysely<Database>,
  scope: TenantScope,
  ratePlanId: string,
): Promise<number | undefined> {
  const row = await db
    .selectFrom("rate_plans")
    .select("latest_version")
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("id", "=", ratePlanId)
    .forUpdate()
    .executeTakeFirst();
  return row?.latest_version;
}

export async function setLatestVersion(
  db: Kysely<Database>,
  scope: TenantScope,
  ratePlanId: string,
  version: number,
  now: Date,
): Promise<void> {
  await db
    .updateTable("rate_plans")
    .set({ latest_version: version, updated_at: now })
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("id", "=", ratePlanId)
    .execute();
}

/** A version of the plan, or its latest when `version` is omitted. */
export async function findVersion(
  db: Kysely<Database>,
  scope: TenantScope,
  ratePlanId: string,
  version?: number,
): Promise<RatePlanVersion | undefined> {
  let query = versions(db, scope).where("p.id", "=", ratePlanId);
  query =
    version === undefined
      ? query.whereRef("v.version", "=", "p.latest_version")
      : query.where("v.version", "=", version);
  const row = await query.executeTakeFirst();
  return row && fromDb(row as VersionRow);
}

/** Every plan at its latest version, newest plan first. */
export async function listLatest(
  db: Kysely<Database>,
  scope: TenantScope,
  page: PageRequest,
): Promise<Page<RatePlanVersion>> {
  const query = versions(db, scope).whereRef("v.version", "=", "p.latest_version");
  const result = await fetchPage(query, "p.id", page);
  return { data: result.data.map((row) => fromDb(row as VersionRow)), has_more: result.has_more };
}

/** A plan's versions, newest first; the cursor is a version number. */
export async function listVersions(
  db: Kysely<Database>,
  scope: TenantScope,
  ratePlanId: string,
  page: { limit: number; startingAfter?: number | undefined },
): Promise<Page<RatePlanVersion>> {
  let query = versions(db, scope).where("p.id", "=", ratePlanId);
  if (page.startingAfter !== undefined) query = query.where("v.version", "<", page.startingAfter);
  const rows = await query
    .orderBy("v.version", "desc")
    .limit(page.limit + 1)
    .execute();
  return {
    data: rows.slice(0, page.limit).map((row) => fromDb(row as VersionRow)),
    has_more: rows.length > page.limit,
  };
}

/** The latest currency of each named plan in this tenant and mode; missing ids are absent. */
export async function latestCurrencies(
  db: Kysely<Database>,
  scope: TenantScope,
  ratePlanIds: readonly string[],
): Promise<Map<string, string>> {
  if (ratePlanIds.length === 0) return new Map();
  const rows = await db
    .selectFrom("rate_plans as p")
    .innerJoin("rate_plan_versions as v", (join) =>
      join.onRef("v.rate_plan_id", "=", "p.id").onRef("v.version", "=", "p.latest_version"),
    )
    .select(["p.id as id", "v.currency as currency"])
    .where("p.tenant_id", "=", scope.tenantId)
    .where("p.mode", "=", scope.mode)
    .where("p.id", "in", [...ratePlanIds])
    .execute();
  return new Map(rows.map((row) => [row.id, row.currency]));
}
