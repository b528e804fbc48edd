import { type Kysely, type Selectable, sql } from "kysely";
import { fetchPage, type Page, type PageRequest } from "../../db/pagination.ts";
import type { Database, Mode } from "../../db/schema.ts";
import type { TenantScope } from "../../http/route-config.ts";
import type { ApiKeyRecord } from "../api-keys/registry.ts";
import { fromDb as keyFromDb } from "../api-keys/store.ts";
import { nextDueAt, type PhaseEntry } from "./domain/lifecycle.ts";
import { UTC } from "./domain/period.ts";
import {
  type PinnedPlan,
  type Subscription,
  type SubscriptionStatus,
  terminalStatuses,
} from "./domain/subscription.ts";
import type { PinnedPlanRow, SubscriptionPhasesTable, SubscriptionsTable } from "./tables.ts";

export interface SubscriptionFilter {
  customerId?: string | undefined;
  status?: SubscriptionStatus | undefined;
}

/** A stored phase: a PhaseEntry with the instant the next one began (null while open). */
export interface StoredPhase extends PhaseEntry {
  subscriptionId: string;
  endedAt: Date | null;
}

function fromItems(rows: PinnedPlanRow[]): PinnedPlan[] {
  return rows.map((row) => ({ ratePlanId: row.rate_plan_id, version: row.version }));
}

function toItems(items: PinnedPlan[]): string {
  return JSON.stringify(items.map((item) => ({ rate_plan_id: item.ratePlanId, version: item.version })));
}

export function fromDb(row: Selectable<SubscriptionsTable>): Subscription {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    mode: row.mode,
    customerId: row.customer_id,
    offeringId: row.offering_id,
    status: row.status as SubscriptionStatus,
    items: fromItems(row.items),
    billingPeriod: row.billing_period,
    currency: row.currency,
    startAt: row.start_at,
    trialEndAt: row.trial_end_at,
    currentPeriodStart: row.current_period_start,
    currentPeriodEnd: row.current_period_end,
    billingAnchorDay: row.billing_anchor_day,
    cancelAtPeriodEnd: row.cancel_at_period_end,
    cancelAt: row.cancel_at,
    canceledAt: row.canceled_at,
    pausedAt: row.paused_at,
    endedAt: row.ended_at,
    promotionId: row.promotion_id,
    promotionCode: row.promotion_code,
    priceOverrides: row.price_overrides,
    metadata: row.metadata,
    timezone: row.timezone,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    version: row.version,
  };
}

function toDb(subscription: Subscription) {
  return {
    customer_id: subscription.customerId,
    offering_id: subscription.offeringId,
    status: subscription.status,
    items: toItems(subscription.items),
    billing_period: JSON.stringify(subscription.billingPeriod),
    currency: subscription.currency,
    start_at: subscription.startAt,
    trial_end_at: subscription.trialEndAt,
    current_period_start: subscription.currentPeriodStart,
    current_period_end: subscription.currentPeriodEnd,
    billing_anchor_day: subscription.billingAnchorDay,
    cancel_at_period_end: subscription.cancelAtPeriodEnd,
    cancel_at: subscription.cancelAt ?? null,
    canceled_at: subscription.canceledAt,
    paused_at: subscription.pausedAt,
    ended_at: subscription.endedAt,
    promotion_id: subscription.promotionId ?? null,
    promotion_code: subscription.promotionCode,
    price_overrides:
      subscription.priceOverrides === null ? null : JSON.stringify(subscription.priceOverrides),
    metadata: JSON.stringify(subscription.metadata),
    timezone: subscription.timezone ?? UTC,
    due_at: nextDueAt(subscription),
    version: subscription.version,
    updated_at: subscription.updatedAt,
  };
}

export async function insertSubscription(db: Kysely<Database>, subscription: Subscription): Promise<void> {
  await db
    .insertInto("subscriptions")
    .values({
      id: subscription.id,
      tenant_id: subscription.tenantId,
      mode: subscription.mode,
      created_at: subscription.createdAt,
      ...toDb(subscription),
    })
    .execute();
}

/** Writes `next` only if the row is still at `next.version - 1` (else: undefined). */
export async function updateSubscription(
  db: Kysely<Database>,
  next: Subscription,
): Promise<Subscription | undefined> {
  const row = await db
    .updateTable("subscriptions")
    .set(toDb(next))
    .where("tenant_id", "=", next.tenantId)
    .where("mode", "=", next.mode)
    .where("id", "=", next.id)
    .where("version", "=", next.version - 1)
    .returningAll()
    .executeTakeFirst();
  return row && fromDb(row);
}

function scoped(db: Kysely<Database>, scope: TenantScope) {
  return db
    .selectFrom("subscriptions")
    .selectAll()
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode);
}

export async function findSubscription(
  db: Kysely<Database>,
  scope: TenantScope,
  id: string,
  forUpdate = false,
): Promise<Subscription | undefined> {
  let query = scoped(db, scope).where("id", "=", id);
  if (forUpdate) query = query.forUpdate();
  const row = await query.executeTakeFirst();
  return row && fromDb(row);
}

/** Across tenants: for the directory, which reloads a subscription another process changed. */
export async function findSubscriptionById(
  db: Kysely<Database>,
  id: string,
): Promise<Subscription | undefined> {
  const row = await db.selectFrom("subscriptions").selectAll().where("id", "=", id).executeTakeFirst();
  return row && fromDb(row);
}

export async function listSubscriptions(
  db: Kysely<Database>,
  scope: TenantScope,
  filter: SubscriptionFilter,
  page: PageRequest,
): Promise<Page<Subscription>> {
  let query = scoped(db, scope);
  if (filter.customerId !== undefined) query = query.where("customer_id", "=", filter.customerId);
  if (filter.status !== undefined) query = query.where("status", "=", filter.status);
  const result = await fetchPage(query, "id", page);
  return { data: result.data.map(fromDb), has_more: result.has_more };
}

export interface DueRef {
  id: string;
  tenantId: string;
  mode: Mode;
}

/** Subscriptions of every tenant that time has changed by `now`, earliest first. */
export async function dueSubscriptions(db: Kysely<Database>, now: Date, limit: number): Promise<DueRef[]> {
  const rows = await db
    .selectFrom("subscriptions")
    .select(["id", "tenant_id", "mode"])
    .where("due_at", "is not", null)
    .where("due_at", "<=", now)
    .orderBy("due_at", "asc")
    .orderBy("id", "asc")
    .limit(limit)
    .execute();
  return rows.map((row) => ({ id: row.id, tenantId: row.tenant_id, mode: row.mode }));
}

/**
 * Every live subscription of every tenant, plus those that ended since `endedSince`, in id order,
 * one batch after another (for the directory).
 */
export async function* liveSubscriptions(
  db: Kysely<Database>,
  endedSince: Date,
  batchSize = 1000,
): AsyncGenerator<Subscription[]> {
  let after: string | undefined;
  for (;;) {
    let query = db
      .selectFrom("subscriptions")
      .selectAll()
      .where((eb) => eb.or([eb("status", "not in", [...terminalStatuses]), eb("ended_at", ">=", endedSince)]))
      .orderBy("id", "asc")
      .limit(batchSize);
    if (after !== undefined) query = query.where("id", ">", after);
    const rows = await query.execute();
    if (rows.length === 0) return;
    yield rows.map(fromDb);
    after = rows[rows.length - 1]?.id;
    if (rows.length < batchSize) return;
  }
}

/** Whether any subscription that has not ended uses the offering (the pricing guard). */
export async function hasLiveSubscriptions(
  db: Kysely<Database>,
  scope: TenantScope,
  offeringId: string,
): Promise<boolean> {
  const row = await db
    .selectFrom("subscriptions")
    .select("id")
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("offering_id", "=", offeringId)
    .where("status", "not in", [...terminalStatuses])
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}

export async function countRedemptions(
  db: Kysely<Database>,
  scope: TenantScope,
  promotionId: string,
): Promise<number> {
  const row = await db
    .selectFrom("subscriptions")
    .select((eb) => eb.fn.countAll<string | number | bigint>().as("count"))
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("promotion_id", "=", promotionId)
    .executeTakeFirst();
  return Number(row?.count ?? 0);
}

// ---- Phases -------------------------------------------------------------------------------------

/** Appends phases in order; each closes the one open before it at its own start. */
export async function appendPhases(
  db: Kysely<Database>,
  subscription: Subscription,
  phases: PhaseEntry[],
): Promise<void> {
  for (const phase of phases) {
    await db
      .updateTable("subscription_phases")
      .set({ ended_at: phase.startedAt })
      .where("tenant_id", "=", subscription.tenantId)
      .where("mode", "=", subscription.mode)
      .where("subscription_id", "=", subscription.id)
      .where("ended_at", "is", null)
      .execute();
    const change = phase.planChange;
    await db
      .insertInto("subscription_phases")
      .values({
        tenant_id: subscription.tenantId,
        mode: subscription.mode,
        subscription_id: subscription.id,
        status: phase.status,
        offering_id: phase.offeringId,
        items: toItems(phase.items),
        reason: phase.reason,
        started_at: phase.startedAt,
        ended_at: null,
        previous_offering_id: change?.previousOfferingId ?? null,
        previous_items: change ? toItems(change.previousItems) : null,
        period_start: change?.periodStart ?? null,
        period_end: change?.periodEnd ?? null,
        fraction_remaining: change?.fractionRemaining ?? null,
      })
      .execute();
  }
}

function phaseFromDb(row: Selectable<SubscriptionPhasesTable>): StoredPhase {
  const { previous_offering_id: previousOfferingId, period_start: periodStart, period_end: periodEnd } = row;
  return {
    subscriptionId: row.subscription_id,
    status: row.status as SubscriptionStatus,
    offeringId: row.offering_id,
    items: fromItems(row.items),
    reason: row.reason,
    startedAt: row.started_at,
    endedAt: row.ended_at,
    planChange:
      previousOfferingId !== null && periodStart !== null && periodEnd !== null
        ? {
            previousOfferingId,
            previousItems: fromItems(row.previous_items ?? []),
            periodStart,
            periodEnd,
            fractionRemaining: row.fraction_remaining ?? "0",
          }
        : null,
  };
}

/** The whole history, oldest first. */
export async function listPhases(
  db: Kysely<Database>,
  scope: TenantScope,
  subscriptionId: string,
): Promise<StoredPhase[]> {
  const rows = await db
    .selectFrom("subscription_phases")
    .selectAll()
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("subscription_id", "=", subscriptionId)
    .orderBy("seq", "asc")
    .execute();
  return rows.map(phaseFromDb);
}

/**
 * listPhases for many subscriptions in one query (bill runs read a chunk at once). One index probe
 * per subscription (LATERAL): without statistics an IN list would scan the whole table.
 */
export async function listPhasesOf(
  db: Kysely<Database>,
  scope: TenantScope,
  subscriptionIds: readonly string[],
): Promise<Map<string, StoredPhase[]>> {
  const bySubscription = new Map<string, StoredPhase[]>(subscriptionIds.map((id) => [id, []]));
  if (subscriptionIds.length === 0) return bySubscription;
  const { rows } = await sql<Selectable<SubscriptionPhasesTable>>`
    select p.* from unnest(${[...subscriptionIds]}::text[]) as k(id)
    cross join lateral (
      select * from subscription_phases
      where tenant_id = ${scope.tenantId} and mode = ${scope.mode} and subscription_id = k.id
      offset 0
    ) as p
    order by p.subscription_id, p.seq
  `.execute(db);
  for (const row of rows) bySubscription.get(row.subscription_id)?.push(phaseFromDb(row));
  return bySubscription;
}

// ---- Consumer keys (rows of api_keys, written only through ApiKeyService) ----------------------

export async function subscriptionKeys(
  db: Kysely<Database>,
  scope: TenantScope,
  subscriptionId: string,
): Promise<ApiKeyRecord[]> {
  const rows = await db
    .selectFrom("api_keys")
    .selectAll()
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("kind", "=", "consumer")
    .where("subscription_id", "=", subscriptionId)
    .orderBy("id", "desc")
    .execute();
  return rows.map(keyFromDb);
}

/** Consumer keys still unrevoked although their subscription has ended (a crash between the two). */
export async function strandedKeys(db: Kysely<Database>, limit: number): Promise<DueRef[]> {
  const rows = await db
    .selectFrom("api_keys")
    .innerJoin("subscriptions", "subscriptions.id", "api_keys.subscription_id")
    .select(["api_keys.id as id", "subscriptions.tenant_id as tenant_id", "subscriptions.mode as mode"])
    .where("api_keys.kind", "=", "consumer")
    .where("api_keys.revoked_at", "is", null)
    .where("subscriptions.status", "in", [...terminalStatuses])
    .limit(limit)
    .execute();
  return rows.map((row) => ({ id: row.id, tenantId: row.tenant_id, mode: row.mode }));
}
