import { formatDecimal } from "@aforo/core";
import type { Kysely, Selectable } from "kysely";
import { fetchPage, type Page, type PageRequest } from "../../../db/pagination.ts";
import type { Database } from "../../../db/schema.ts";
import type { TenantScope } from "../../../http/route-config.ts";
import type { BillingMode, Offering, OfferingStatus } from "../domain/offering.ts";
import type { OfferingsTable } from "../tables.ts";

export function fromDb(row: Selectable<OfferingsTable>): Offering {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    mode: row.mode,
    name: row.name,
    description: row.description,
    ratePlanIds: row.rate_plan_ids,
    billingMode: row.billing_mode as BillingMode,
    trialDays: row.trial_days,
    escrow: row.escrow,
    initialCredits: row.initial_credits === null ? null : formatDecimal(row.initial_credits),
    currency: row.currency,
    status: row.status as OfferingStatus,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function toDb(offering: Offering) {
  return {
    name: offering.name,
    description: offering.description,
    rate_plan_ids: offering.ratePlanIds,
    billing_mode: offering.billingMode,
    trial_days: offering.trialDays,
    escrow: offering.escrow === null ? null : JSON.stringify(offering.escrow),
    initial_credits: offering.initialCredits,
    currency: offering.currency,
    status: offering.status,
    updated_at: offering.updatedAt,
  };
}

export async function insertOffering(db: Kysely<Database>, offering: Offering): Promise<void> {
  await db
    .insertInto("offerings")
    .values({
      id: offering.id,
      tenant_id: offering.tenantId,
      mode: offering.mode,
      created_at: offering.createdAt,
      ...toDb(offering),
    })
    .execute();
}

export async function updateOffering(
  db: Kysely<Database>,
  scope: TenantScope,
  offering: Offering,
): Promise<void> {
  await db
    .updateTable("offerings")
    .set(toDb(offering))
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("id", "=", offering.id)
    .execute();
}

export async function findOffering(
  db: Kysely<Database>,
  scope: TenantScope,
  id: string,
  options: { forUpdate?: boolean } = {},
): Promise<Offering | undefined> {
  let query = db
    .selectFrom("offerings")
    .selectAll()
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("id", "=", id);
  if (options.forUpdate) query = query.forUpdate();
  const row = await query.executeTakeFirst();
  return row && fromDb(row);
}

export async function listOfferings(
  db: Kysely<Database>,
  scope: TenantScope,
  page: PageRequest,
  status?: OfferingStatus,
): Promise<Page<Offering>> {
  let query = db
    .selectFrom("offerings")
    .selectAll()
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode);
  if (status) query = query.where("status", "=", status);
  const result = await fetchPage(query, "id", page);
  return { data: result.data.map(fromDb), has_more: result.has_more };
}

/** Which of these ids are offerings of this tenant and mode. */
export async function existingOfferingIds(
  db: Kysely<Database>,
  scope: TenantScope,
  ids: readonly string[],
): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const rows = await db
    .selectFrom("offerings")
    .select("id")
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("id", "in", [...ids])
    .execute();
  return new Set(rows.map((row) => row.id));
}
