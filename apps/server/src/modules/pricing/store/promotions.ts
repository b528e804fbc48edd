import { formatDecimal } from "@aforo/core";
import type { Kysely, Selectable } from "kysely";
import { fetchPage, type Page, type PageRequest } from "../../../db/pagination.ts";
import type { Database } from "../../../db/schema.ts";
import type { TenantScope } from "../../../http/route-config.ts";
import {
  normalizeCode,
  type Promotion,
  type PromotionDuration,
  type PromotionStatus,
} from "../domain/promotion.ts";
import type { PromotionsTable } from "../tables.ts";

export function fromDb(row: Selectable<PromotionsTable>): Promotion {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    mode: row.mode,
    code: row.code,
    percentOff: row.percent_off === null ? null : formatDecimal(row.percent_off),
    amountOff: row.amount_off === null ? null : formatDecimal(row.amount_off),
    currency: row.currency,
    duration: row.duration as PromotionDuration,
    durationInPeriods: row.duration_in_periods,
    expiresAt: row.expires_at,
    maxRedemptions: row.max_redemptions,
    offeringIds: row.offering_ids,
    status: row.status as PromotionStatus,
    createdAt: row.created_at,
    archivedAt: row.archived_at,
  };
}

export async function insertPromotion(db: Kysely<Database>, promotion: Promotion): Promise<void> {
  await db
    .insertInto("promotions")
    .values({
      id: promotion.id,
      tenant_id: promotion.tenantId,
      mode: promotion.mode,
      code: promotion.code,
      code_normalized: normalizeCode(promotion.code),
      percent_off: promotion.percentOff,
      amount_off: promotion.amountOff,
      currency: promotion.currency,
      duration: promotion.duration,
      duration_in_periods: promotion.durationInPeriods,
      expires_at: promotion.expiresAt,
      max_redemptions: promotion.maxRedemptions,
      offering_ids: promotion.offeringIds,
      status: promotion.status,
      created_at: promotion.createdAt,
      archived_at: promotion.archivedAt,
    })
    .execute();
}

function scoped(db: Kysely<Database>, scope: TenantScope) {
  return db
    .selectFrom("promotions")
    .selectAll()
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode);
}

export async function findPromotion(
  db: Kysely<Database>,
  scope: TenantScope,
  id: string,
): Promise<Promotion | undefined> {
  const row = await scoped(db, scope).where("id", "=", id).executeTakeFirst();
  return row && fromDb(row);
}

export async function findPromotionByCode(
  db: Kysely<Database>,
  scope: TenantScope,
  code: string,
): Promise<Promotion | undefined> {
  const row = await scoped(db, scope).where("code_normalized", "=", normalizeCode(code)).executeTakeFirst();
  return row && fromDb(row);
}

export async function listPromotions(
  db: Kysely<Database>,
  scope: TenantScope,
  page: PageRequest,
): Promise<Page<Promotion>> {
  const result = await fetchPage(scoped(db, scope), "id", page);
  return { data: result.data.map(fromDb), has_more: result.has_more };
}

export async function archivePromotion(
  db: Kysely<Database>,
  scope: TenantScope,
  id: string,
  now: Date,
): Promise<Promotion | undefined> {
  const row = await db
    .updateTable("promotions")
    .set({ status: "ARCHIVED", archived_at: now })
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("id", "=", id)
    .where("status", "<>", "ARCHIVED")
    .returningAll()
    .executeTakeFirst();
  return row && fromDb(row);
}
