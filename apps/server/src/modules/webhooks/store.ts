import { type Kysely, type Selectable, sql } from "kysely";
import { fetchPage, type Page, type PageRequest } from "../../db/pagination.ts";
import type { Database } from "../../db/schema.ts";
import type { TenantScope } from "../../http/route-config.ts";
import type {
  AttemptTrigger,
  DeliveryChange,
  DeliveryStatus,
  WebhookAttempt,
  WebhookDelivery,
  WebhookEndpoint,
} from "./domain.ts";
import type { WebhookAttemptsTable, WebhookDeliveriesTable, WebhookEndpointsTable } from "./tables.ts";

// ---- Endpoints ----------------------------------------------------------------------------------

function endpointFromDb(row: Selectable<WebhookEndpointsTable>): WebhookEndpoint {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    mode: row.mode,
    url: row.url,
    description: row.description,
    events: row.events,
    enabled: row.enabled,
    secretSealed: row.secret_sealed,
    previousSecretSealed: row.previous_secret_sealed,
    previousSecretExpiresAt: row.previous_secret_expires_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function endpointToDb(endpoint: WebhookEndpoint) {
  return {
    url: endpoint.url,
    description: endpoint.description,
    events: endpoint.events,
    enabled: endpoint.enabled,
    secret_sealed: endpoint.secretSealed,
    previous_secret_sealed: endpoint.previousSecretSealed,
    previous_secret_expires_at: endpoint.previousSecretExpiresAt,
    updated_at: endpoint.updatedAt,
  };
}

function endpoints(db: Kysely<Database>, scope: TenantScope) {
  return db
    .selectFrom("webhook_endpoints")
    .selectAll()
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode);
}

export async function insertEndpoint(db: Kysely<Database>, endpoint: WebhookEndpoint): Promise<void> {
  await db
    .insertInto("webhook_endpoints")
    .values({
      id: endpoint.id,
      tenant_id: endpoint.tenantId,
      mode: endpoint.mode,
      created_at: endpoint.createdAt,
      ...endpointToDb(endpoint),
    })
    .execute();
}

export async function updateEndpoint(
  db: Kysely<Database>,
  scope: TenantScope,
  endpoint: WebhookEndpoint,
): Promise<void> {
  await db
    .updateTable("webhook_endpoints")
    .set(endpointToDb(endpoint))
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("id", "=", endpoint.id)
    .execute();
}

export async function findEndpoint(
  db: Kysely<Database>,
  scope: TenantScope,
  id: string,
  forUpdate = false,
): Promise<WebhookEndpoint | undefined> {
  let query = endpoints(db, scope).where("id", "=", id);
  if (forUpdate) query = query.forUpdate();
  const row = await query.executeTakeFirst();
  return row && endpointFromDb(row);
}

export async function listEndpoints(
  db: Kysely<Database>,
  scope: TenantScope,
  page: PageRequest,
): Promise<Page<WebhookEndpoint>> {
  const result = await fetchPage(endpoints(db, scope), "id", page);
  return { data: result.data.map(endpointFromDb), has_more: result.has_more };
}

/** Every enabled endpoint of the tenant and mode (a handful: the event filter is applied in code). */
export async function enabledEndpoints(db: Kysely<Database>, scope: TenantScope): Promise<WebhookEndpoint[]> {
  const rows = await endpoints(db, scope).where("enabled", "=", true).execute();
  return rows.map(endpointFromDb);
}

export async function deleteEndpoint(db: Kysely<Database>, scope: TenantScope, id: string): Promise<boolean> {
  const result = await db
    .deleteFrom("webhook_endpoints")
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("id", "=", id)
    .executeTakeFirst();
  return result.numDeletedRows > 0n;
}

// ---- Events and deliveries ----------------------------------------------------------------------

export interface NewEvent {
  id: string;
  type: string;
  payload: string;
  createdAt: Date;
}

export async function insertEvent(db: Kysely<Database>, scope: TenantScope, event: NewEvent): Promise<void> {
  await db
    .insertInto("webhook_events")
    .values({
      id: event.id,
      tenant_id: scope.tenantId,
      mode: scope.mode,
      type: event.type,
      payload: event.payload,
      created_at: event.createdAt,
    })
    .execute();
}

export async function insertDeliveries(
  db: Kysely<Database>,
  scope: TenantScope,
  event: NewEvent,
  deliveries: { id: string; endpointId: string }[],
): Promise<void> {
  if (deliveries.length === 0) return;
  await db
    .insertInto("webhook_deliveries")
    .values(
      deliveries.map((delivery) => ({
        id: delivery.id,
        tenant_id: scope.tenantId,
        mode: scope.mode,
        endpoint_id: delivery.endpointId,
        event_id: event.id,
        event_type: event.type,
        status: "pending",
        next_attempt_at: event.createdAt,
        created_at: event.createdAt,
        updated_at: event.createdAt,
      })),
    )
    .execute();
}

function deliveryFromDb(row: Selectable<WebhookDeliveriesTable>): WebhookDelivery {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    mode: row.mode,
    endpointId: row.endpoint_id,
    eventId: row.event_id,
    eventType: row.event_type,
    status: row.status as DeliveryStatus,
    attemptCount: row.attempt_count,
    automaticAttemptCount: row.automatic_attempt_count,
    nextAttemptAt: row.next_attempt_at,
    lockedUntil: row.locked_until,
    lastAttemptAt: row.last_attempt_at,
    lastStatusCode: row.last_status_code,
    lastError: row.last_error,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function deliveries(db: Kysely<Database>, scope: TenantScope) {
  return db
    .selectFrom("webhook_deliveries")
    .selectAll()
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode);
}

export async function findDelivery(
  db: Kysely<Database>,
  scope: TenantScope,
  id: string,
): Promise<WebhookDelivery | undefined> {
  const row = await deliveries(db, scope).where("id", "=", id).executeTakeFirst();
  return row && deliveryFromDb(row);
}

export async function listDeliveries(
  db: Kysely<Database>,
  scope: TenantScope,
  endpointId: string,
  filter: { status?: DeliveryStatus | undefined; eventType?: string | undefined },
  page: PageRequest,
): Promise<Page<WebhookDelivery>> {
  let query = deliveries(db, scope).where("endpoint_id", "=", endpointId);
  if (filter.status) query = query.where("status", "=", filter.status);
  if (filter.eventType) query = query.where("event_type", "=", filter.eventType);
  const result = await fetchPage(query, "id", page);
  return { data: result.data.map(deliveryFromDb), has_more: result.has_more };
}

/**
 * Takes the lease on a delivery, or nothing when another process holds it. `due` also requires it
 * to be pending and due (automatic attempts); a replay takes it in any state.
 */
export async function claimDelivery(
  db: Kysely<Database>,
  id: string,
  options: { now: Date; leaseUntil: Date; leaseId: string; due: boolean; scope?: TenantScope | undefined },
): Promise<WebhookDelivery | undefined> {
  let query = db
    .updateTable("webhook_deliveries")
    .set({ locked_until: options.leaseUntil, lease_id: options.leaseId })
    .where("id", "=", id)
    .where((eb) => eb.or([eb("locked_until", "is", null), eb("locked_until", "<=", options.now)]));
  if (options.scope) {
    query = query.where("tenant_id", "=", options.scope.tenantId).where("mode", "=", options.scope.mode);
  }
  if (options.due) query = query.where("status", "=", "pending").where("next_attempt_at", "<=", options.now);
  const row = await query.returningAll().executeTakeFirst();
  return row && deliveryFromDb(row);
}

/** What an attempt needs besides the delivery: its endpoint (absent once deleted) and its body. */
export async function attemptMaterial(
  db: Kysely<Database>,
  delivery: WebhookDelivery,
): Promise<{ endpoint: WebhookEndpoint | undefined; payload: string | undefined }> {
  const scope = { tenantId: delivery.tenantId, mode: delivery.mode };
  const [endpoint, event] = await Promise.all([
    findEndpoint(db, scope, delivery.endpointId),
    db
      .selectFrom("webhook_events")
      .select("payload")
      .where("tenant_id", "=", scope.tenantId)
      .where("mode", "=", scope.mode)
      .where("id", "=", delivery.eventId)
      .executeTakeFirst(),
  ]);
  return { endpoint, payload: event?.payload };
}

/**
 * Logs the attempt and, if the lease `leaseId` is still this attempt's, writes the delivery's new
 * state and frees the lease. An attempt that outlived its lease (another process took over) is
 * only logged: undefined.
 */
export async function recordAttempt(
  db: Kysely<Database>,
  delivery: WebhookDelivery,
  leaseId: string,
  attempt: WebhookAttempt,
  change: DeliveryChange,
): Promise<WebhookDelivery | undefined> {
  await db
    .insertInto("webhook_attempts")
    .values({
      id: attempt.id,
      tenant_id: delivery.tenantId,
      mode: delivery.mode,
      delivery_id: delivery.id,
      trigger: attempt.trigger,
      succeeded: attempt.succeeded,
      status_code: attempt.statusCode,
      response_body: attempt.responseBody,
      duration_ms: attempt.durationMs,
      error: attempt.error,
      attempted_at: attempt.attemptedAt,
    })
    .execute();
  const row = await db
    .updateTable("webhook_deliveries")
    .set({
      status: change.status,
      attempt_count: change.attemptCount,
      automatic_attempt_count: change.automaticAttemptCount,
      next_attempt_at: change.nextAttemptAt,
      last_attempt_at: change.lastAttemptAt,
      last_status_code: change.lastStatusCode,
      last_error: change.lastError,
      locked_until: null,
      lease_id: null,
      updated_at: change.lastAttemptAt,
    })
    .where("id", "=", delivery.id)
    .where("tenant_id", "=", delivery.tenantId)
    .where("mode", "=", delivery.mode)
    .where("lease_id", "=", leaseId)
    .returningAll()
    .executeTakeFirst();
  return row && deliveryFromDb(row);
}

function attemptFromDb(row: Selectable<WebhookAttemptsTable>): WebhookAttempt {
  return {
    id: row.id,
    deliveryId: row.delivery_id,
    trigger: row.trigger as AttemptTrigger,
    succeeded: row.succeeded,
    statusCode: row.status_code,
    responseBody: row.response_body,
    durationMs: row.duration_ms,
    error: row.error,
    attemptedAt: row.attempted_at,
  };
}

/** The attempts of these deliveries, oldest first, grouped by delivery. */
export async function attemptsOf(
  db: Kysely<Database>,
  scope: TenantScope,
  deliveryIds: readonly string[],
): Promise<Map<string, WebhookAttempt[]>> {
  const grouped = new Map<string, WebhookAttempt[]>(deliveryIds.map((id) => [id, []]));
  if (deliveryIds.length === 0) return grouped;
  const rows = await db
    .selectFrom("webhook_attempts")
    .selectAll()
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("delivery_id", "in", [...deliveryIds])
    .orderBy("id", "asc")
    .execute();
  for (const row of rows) grouped.get(row.delivery_id)?.push(attemptFromDb(row));
  return grouped;
}

/** The events of these deliveries: their type, time and body, for the delivery log. */
export async function eventsOf(
  db: Kysely<Database>,
  scope: TenantScope,
  eventIds: readonly string[],
): Promise<Map<string, { type: string; payload: string; createdAt: Date }>> {
  const events = new Map<string, { type: string; payload: string; createdAt: Date }>();
  if (eventIds.length === 0) return events;
  const rows = await db
    .selectFrom("webhook_events")
    .select(["id", "type", "payload", "created_at"])
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("id", "in", [...new Set(eventIds)])
    .execute();
  for (const row of rows)
    events.set(row.id, { type: row.type, payload: row.payload, createdAt: row.created_at });
  return events;
}

/** Across tenants (the sweep): pending deliveries due by `now` whose lease is free, oldest first. */
export async function dueDeliveryIds(db: Kysely<Database>, now: Date, limit: number): Promise<string[]> {
  const rows = await db
    .selectFrom("webhook_deliveries")
    .select("id")
    .where("status", "=", "pending")
    .where("next_attempt_at", "<=", now)
    .where((eb) => eb.or([eb("locked_until", "is", null), eb("locked_until", "<=", now)]))
    .orderBy("next_attempt_at", "asc")
    .limit(limit)
    .execute();
  return rows.map((row) => row.id);
}

/** Across tenants (retention): events older than `before` with nothing left to deliver, with their log. */
export async function deleteOldEvents(db: Kysely<Database>, before: Date): Promise<number> {
  const result = await db
    .deleteFrom("webhook_events")
    .where("created_at", "<", before)
    .where(({ not, exists, selectFrom }) =>
      not(
        exists(
          selectFrom("webhook_deliveries")
            .select(sql`1`.as("one"))
            .whereRef("webhook_deliveries.event_id", "=", "webhook_events.id")
            .where("webhook_deliveries.status", "=", "pending"),
        ),
      ),
    )
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}

// ---- Usage thresholds ---------------------------------------------------------------------------

/** True when this call recorded the threshold (it had not been announced before). */
export async function recordThreshold(
  db: Kysely<Database>,
  scope: TenantScope,
  threshold: { customerId: string; feature: string; periodEnd: Date; percent: number; now: Date },
): Promise<boolean> {
  const rows = await db
    .insertInto("webhook_usage_thresholds")
    .values({
      tenant_id: scope.tenantId,
      mode: scope.mode,
      customer_id: threshold.customerId,
      feature: threshold.feature,
      period_end: threshold.periodEnd,
      threshold_percent: threshold.percent,
      created_at: threshold.now,
    })
    .onConflict((conflict) =>
      conflict
        .columns(["tenant_id", "mode", "customer_id", "feature", "period_end", "threshold_percent"])
        .doNothing(),
    )
    .returning("threshold_percent")
    .execute();
  return rows.length > 0;
}

/** Across tenants (retention): thresholds of periods that ended before `before`. */
export async function deleteOldThresholds(db: Kysely<Database>, before: Date): Promise<number> {
  const result = await db
    .deleteFrom("webhook_usage_thresholds")
    .where("period_end", "<", before)
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
