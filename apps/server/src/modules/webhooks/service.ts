import { randomBytes, randomUUID } from "node:crypto";
import { AforoError, newId } from "@aforo/core";
import { type Kysely, sql } from "kysely";
import { type Clock, systemClock } from "../../clock.ts";
import type { DatabaseHandle } from "../../db/database.ts";
import type { Page, PageRequest } from "../../db/pagination.ts";
import type { Database } from "../../db/schema.ts";
import type { TenantScope } from "../../http/route-config.ts";
import type { JobQueue } from "../../jobs/queue.ts";
import type { EntitlementService } from "../entitlements/service.ts";
import type { MeteringService } from "../metering/service.ts";
import {
  type AttemptOutcome,
  type AttemptTrigger,
  afterAttempt,
  checkEndpointUrl,
  checkEventFilter,
  type DeliveryStatus,
  isSuccess,
  PREVIOUS_SECRET_OVERLAP_MS,
  payloadOf,
  subscribes,
  type WebhookAttempt,
  type WebhookDelivery,
  type WebhookEndpoint,
} from "./domain.ts";
import type { WebhookEventType, WebhookPublisher } from "./publisher.ts";
import { SecretBox } from "./secrets.ts";
import { send } from "./sender.ts";
import * as store from "./store.ts";
import { UsageThresholdWatcher } from "./usage-thresholds.ts";

export type { WebhookDelivery, WebhookEndpoint } from "./domain.ts";

const DELIVER_QUEUE = "webhooks.deliver";
/** PostgreSQL: deliveries just committed, so a worker sends them without waiting for its next poll. */
const COMMITTED_CHANNEL = "aforo_webhook_deliveries";
const SWEEP_QUEUE = "webhooks.sweep";
/** pg-boss cron has minute resolution: retries scheduled by job come sooner, this is the safety net. */
const SWEEP_CRON = "* * * * *";
const SWEEP_BATCH = 100;
const SWEEP_CONCURRENCY = 8;
/** Events (with their deliveries and attempts) are kept this long once nothing is left to send. */
const RETENTION_MS = 30 * 86_400_000;
const RETENTION_INTERVAL_MS = 3_600_000;
/** The lease on a delivery outlives its attempt by this much; a dead process's lease then expires. */
const LEASE_MARGIN_MS = 60_000;
/** How long which tenants listen for an event type is remembered (usage thresholds only). */
const LISTENER_CACHE_MS = 30_000;

export interface WebhookServiceOptions {
  /** The waits before each retry; after the last one a delivery is failed. */
  retryScheduleMs: readonly number[];
  timeoutMs: number;
  /** AFORO_SECRETS_KEY: seals signing secrets (see secrets.ts). */
  secretsKey: string | undefined;
  /**
   * Signing time: receivers check `webhook-timestamp` against their own clock (5 minutes of
   * tolerance in the reference libraries), so it is wall-clock time even when the application's
   * clock is simulated. Due times and the log use the application's clock.
   */
  wallClock?: Clock;
}

export interface CreateEndpointInput {
  url: string;
  events: string[];
  description?: string | null | undefined;
  enabled?: boolean | undefined;
}

export interface UpdateEndpointInput {
  url?: string | undefined;
  events?: string[] | undefined;
  description?: string | null | undefined;
  enabled?: boolean | undefined;
}

/** An endpoint as just created or rotated: the only moment its secret is shown. */
export interface EndpointWithSecret {
  endpoint: WebhookEndpoint;
  secret: string;
}

/** A delivery with its event and every attempt, for the delivery log. */
export interface DeliveryView {
  delivery: WebhookDelivery;
  attempts: WebhookAttempt[];
  event: { type: string; payload: string; createdAt: Date } | undefined;
}

interface DeliverJob {
  deliveryIds: string[];
}

function endpointNotFound(id: string): AforoError {
  return new AforoError("not-found", `No webhook endpoint with id '${id}' exists in this tenant and mode.`);
}

function deliveryNotFound(id: string): AforoError {
  return new AforoError("not-found", `No webhook delivery with id '${id}' exists in this tenant and mode.`);
}

/** "whsec_" and 32 random bytes in base64: the Standard Webhooks secret format. */
function newSecret(): string {
  return `whsec_${randomBytes(32).toString("base64")}`;
}

/**
 * Outbound webhooks. `publish` is the outbox: inside the caller's transaction it stores the event,
 * one delivery per subscribed endpoint, and (when this process works the queue) the job that
 * delivers them, so all of it exists exactly when the change committed. Deliveries are signed per
 * Standard Webhooks and retried on the configured schedule (each retry is a job with a start time);
 * a sweep every minute, and once at start, sends whatever is due and was not sent — a job lost with
 * its process, a retry due by the application's clock, rows written by a process without workers.
 * Each attempt takes a lease on its delivery (an UPDATE … RETURNING), so a delivery is attempted by
 * one process at a time; delivery is at least once (a process that dies after the receiver answered
 * but before the attempt was recorded sends again), and `webhook-id` lets receivers deduplicate.
 */
export class WebhookService implements WebhookPublisher {
  readonly #database: DatabaseHandle;
  readonly #clock: Clock;
  readonly #wallClock: Clock;
  readonly #jobs: JobQueue;
  readonly #secrets: SecretBox;
  readonly #listeners = new Map<string, { types: Set<string>; readAtMs: number }>();
  readonly #inFlight = new Set<Promise<unknown>>();
  #retryScheduleMs: readonly number[];
  #timeoutMs: number;
  #started = false;
  #unlisten: (() => Promise<void>) | undefined;
  #lastRetentionMs = 0;
  usageThresholds: UsageThresholdWatcher | undefined;

  constructor(database: DatabaseHandle, clock: Clock, jobs: JobQueue, options: WebhookServiceOptions) {
    this.#database = database;
    this.#clock = clock;
    this.#wallClock = options.wallClock ?? systemClock;
    this.#jobs = jobs;
    this.#secrets = new SecretBox(database.db, options.secretsKey);
    this.#retryScheduleMs = [...options.retryScheduleMs];
    this.#timeoutMs = options.timeoutMs;
  }

  get #db(): Kysely<Database> {
    return this.#database.db;
  }

  /** The retry schedule and timeout in force (tests shorten them). */
  configure(options: { retryScheduleMs?: readonly number[]; timeoutMs?: number }): void {
    if (options.retryScheduleMs) this.#retryScheduleMs = [...options.retryScheduleMs];
    if (options.timeoutMs !== undefined) this.#timeoutMs = options.timeoutMs;
  }

  /**
   * Announces usage.threshold_reached: every committed batch of usage events is looked at after
   * the fact, off the request path (see usage-thresholds.ts).
   */
  watchUsage(metering: MeteringService, entitlements: EntitlementService): void {
    const watcher = new UsageThresholdWatcher(this.#database, this.#clock, { entitlements, webhooks: this });
    this.usageThresholds = watcher;
    metering.onAccepted((rows) => watcher.observe(rows));
  }

  /** Works the delivery queue, schedules the sweep and runs one now (catching up after a restart). */
  async start(): Promise<void> {
    await this.#jobs.work<DeliverJob>(DELIVER_QUEUE, async (job) => {
      await Promise.all(job.data.deliveryIds.map((id) => this.deliver(id)));
    });
    await this.#jobs.work(SWEEP_QUEUE, async () => {
      await this.sweep();
    });
    await this.#jobs.schedule(SWEEP_QUEUE, SWEEP_CRON);
    // The job is queued inside the publishing transaction, so pg-boss's wake-up can come before the
    // commit and find nothing; NOTIFY is delivered at the commit, so the send starts at once.
    this.#unlisten = await this.#database.listen(
      COMMITTED_CHANNEL,
      (payload) => {
        if (!this.#started) return;
        for (const id of payload.split(",")) if (id) void this.deliver(id).catch(() => undefined);
      },
      // Wake-ups lost with the connection: the sweep sends whatever is due.
      () => void this.sweep().catch(() => undefined),
    );
    this.#started = true;
    await this.#jobs.send(SWEEP_QUEUE, {}, { singletonKey: "catch-up" });
  }

  /** Stops triggering deliveries and waits for the attempts and announcements under way. */
  async stop(): Promise<void> {
    this.#started = false;
    await this.#unlisten?.();
    this.#unlisten = undefined;
    await this.settle();
  }

  /** Resolves once the attempts and usage-threshold checks under way are done. */
  async settle(): Promise<void> {
    await this.usageThresholds?.settle();
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }

  // ---- Endpoints ----------------------------------------------------------------------------------

  async create(scope: TenantScope, input: CreateEndpointInput): Promise<EndpointWithSecret> {
    const url = checkEndpointUrl(input.url);
    const events = checkEventFilter(input.events);
    const secret = newSecret();
    const now = this.#clock.now();
    const endpoint: WebhookEndpoint = {
      id: newId("webhookEndpoint"),
      tenantId: scope.tenantId,
      mode: scope.mode,
      url,
      description: input.description ?? null,
      events,
      enabled: input.enabled ?? true,
      secretSealed: await this.#secrets.seal(secret),
      previousSecretSealed: null,
      previousSecretExpiresAt: null,
      createdAt: now,
      updatedAt: now,
    };
    await store.insertEndpoint(this.#db, endpoint);
    this.#forgetListeners(scope);
    return { endpoint, secret };
  }

  list(scope: TenantScope, page: PageRequest): Promise<Page<WebhookEndpoint>> {
    return store.listEndpoints(this.#db, scope, page);
  }

  async get(scope: TenantScope, id: string): Promise<WebhookEndpoint> {
    const endpoint = await store.findEndpoint(this.#db, scope, id);
    if (!endpoint) throw endpointNotFound(id);
    return endpoint;
  }

  async update(scope: TenantScope, id: string, input: UpdateEndpointInput): Promise<WebhookEndpoint> {
    const url = input.url === undefined ? undefined : checkEndpointUrl(input.url);
    const events = input.events === undefined ? undefined : checkEventFilter(input.events);
    const updated = await this.#db.transaction().execute(async (trx) => {
      const current = await store.findEndpoint(trx, scope, id, true);
      if (!current) throw endpointNotFound(id);
      const next: WebhookEndpoint = {
        ...current,
        url: url ?? current.url,
        events: events ?? current.events,
        description: input.description === undefined ? current.description : input.description,
        enabled: input.enabled ?? current.enabled,
        updatedAt: this.#clock.now(),
      };
      await store.updateEndpoint(trx, scope, next);
      return next;
    });
    this.#forgetListeners(scope);
    return updated;
  }

  /** Deletes the endpoint with its deliveries and their log; pending deliveries are dropped. */
  async delete(scope: TenantScope, id: string): Promise<void> {
    if (!(await store.deleteEndpoint(this.#db, scope, id))) throw endpointNotFound(id);
    this.#forgetListeners(scope);
  }

  /**
   * A new signing secret. The previous one keeps signing beside it for 24 hours (each delivery
   * carries both signatures), so receivers can switch without rejecting anything.
   */
  async rotateSecret(scope: TenantScope, id: string): Promise<EndpointWithSecret> {
    const secret = newSecret();
    const sealed = await this.#secrets.seal(secret);
    const endpoint = await this.#db.transaction().execute(async (trx) => {
      const current = await store.findEndpoint(trx, scope, id, true);
      if (!current) throw endpointNotFound(id);
      const now = this.#clock.now();
      const next: WebhookEndpoint = {
        ...current,
        secretSealed: sealed,
        previousSecretSealed: current.secretSealed,
        previousSecretExpiresAt: new Date(now.getTime() + PREVIOUS_SECRET_OVERLAP_MS),
        updatedAt: now,
      };
      await store.updateEndpoint(trx, scope, next);
      return next;
    });
    return { endpoint, secret };
  }

  // ---- The outbox ---------------------------------------------------------------------------------

  /** `publish` for each event, in order; the endpoints are read once (none subscribed: nothing). */
  async publishMany(
    trx: Kysely<Database>,
    scope: TenantScope,
    type: WebhookEventType,
    data: readonly Record<string, unknown>[],
  ): Promise<void> {
    if (data.length === 0) return;
    const subscribed = (await store.enabledEndpoints(trx, scope)).some((endpoint) =>
      subscribes(endpoint, type),
    );
    if (!subscribed) return;
    for (const item of data) await this.publish(trx, scope, type, item);
  }

  async publish(
    trx: Kysely<Database>,
    scope: TenantScope,
    type: WebhookEventType,
    data: Record<string, unknown>,
  ): Promise<void> {
    const targets = (await store.enabledEndpoints(trx, scope)).filter((endpoint) =>
      subscribes(endpoint, type),
    );
    if (targets.length === 0) return;
    const now = this.#clock.now();
    const event = { id: newId("webhookEvent"), type, payload: payloadOf(type, now, data), createdAt: now };
    const deliveries = targets.map((endpoint) => ({ id: newId("webhookDelivery"), endpointId: endpoint.id }));
    await store.insertEvent(trx, scope, event);
    await store.insertDeliveries(trx, scope, event, deliveries);
    if (!this.#started) return;
    const ids = deliveries.map((delivery) => delivery.id);
    await this.#enqueueIn(trx, ids);
    const payload = ids.join(",");
    // NOTIFY payloads stop at 8000 bytes; past that the job's poll picks them up (seconds later).
    if (this.#database.kind === "postgres" && payload.length < 7_000)
      await sql`select pg_notify(${COMMITTED_CHANNEL}, ${payload})`.execute(trx);
  }

  /**
   * The delivery job, in the caller's transaction. Behind a savepoint: if the queue cannot take it,
   * the change still commits and the sweep delivers.
   */
  async #enqueueIn(trx: Kysely<Database>, deliveryIds: string[]): Promise<void> {
    const data: DeliverJob = { deliveryIds };
    if (!trx.isTransaction) {
      await this.#jobs.send(DELIVER_QUEUE, data).catch(() => undefined);
      return;
    }
    await sql`savepoint webhook_job`.execute(trx);
    try {
      await this.#jobs.send(DELIVER_QUEUE, data, { transaction: trx });
      await sql`release savepoint webhook_job`.execute(trx);
    } catch {
      await sql`rollback to savepoint webhook_job`.execute(trx);
    }
  }

  /** Whether any enabled endpoint of the tenant and mode takes this event type (cached briefly). */
  async listens(scope: TenantScope, type: WebhookEventType): Promise<boolean> {
    const key = `${scope.tenantId}\u0000${scope.mode}`;
    const nowMs = performance.now();
    let cached = this.#listeners.get(key);
    if (!cached || nowMs - cached.readAtMs > LISTENER_CACHE_MS) {
      const endpoints = await store.enabledEndpoints(this.#db, scope);
      cached = { types: new Set(endpoints.flatMap((endpoint) => endpoint.events)), readAtMs: nowMs };
      this.#listeners.set(key, cached);
    }
    return cached.types.has("*") || cached.types.has(type);
  }

  #forgetListeners(scope: TenantScope): void {
    this.#listeners.delete(`${scope.tenantId}\u0000${scope.mode}`);
  }

  // ---- Delivering ---------------------------------------------------------------------------------

  /** One automatic attempt of a delivery if it is pending, due and not being sent; false otherwise. */
  async deliver(deliveryId: string): Promise<boolean> {
    return this.#track(async () => {
      const now = this.#clock.now();
      const leaseId = randomUUID();
      const claimed = await store.claimDelivery(this.#db, deliveryId, {
        now,
        leaseUntil: this.#leaseEnd(now),
        leaseId,
        due: true,
      });
      if (!claimed) return false;
      await this.#attempt(claimed, leaseId, "automatic");
      return true;
    });
  }

  /**
   * Sends every due delivery nobody is sending (the safety net behind the jobs) and, hourly, drops
   * events past retention. Returns how many attempts it made.
   */
  async sweep(): Promise<number> {
    let attempted = 0;
    const seen = new Set<string>();
    for (;;) {
      const due = (await store.dueDeliveryIds(this.#db, this.#clock.now(), SWEEP_BATCH)).filter(
        (id) => !seen.has(id),
      );
      if (due.length === 0) break;
      for (const id of due) seen.add(id);
      for (let start = 0; start < due.length; start += SWEEP_CONCURRENCY) {
        const results = await Promise.all(
          due.slice(start, start + SWEEP_CONCURRENCY).map((id) => this.deliver(id).catch(() => false)),
        );
        attempted += results.filter(Boolean).length;
      }
    }
    await this.#applyRetention();
    return attempted;
  }

  async #applyRetention(): Promise<void> {
    const nowMs = this.#clock.now().getTime();
    if (nowMs - this.#lastRetentionMs < RETENTION_INTERVAL_MS) return;
    this.#lastRetentionMs = nowMs;
    await store.deleteOldEvents(this.#db, new Date(nowMs - RETENTION_MS));
    await store.deleteOldThresholds(this.#db, new Date(nowMs - RETENTION_MS));
  }

  /**
   * Sends the delivery again now, whatever its state, as a new attempt in its log. A delivery
   * being sent right now is a 409; so is one whose endpoint is disabled.
   */
  async replay(scope: TenantScope, deliveryId: string): Promise<DeliveryView> {
    return this.#track(async () => {
      const found = await store.findDelivery(this.#db, scope, deliveryId);
      if (!found) throw deliveryNotFound(deliveryId);
      const endpoint = await store.findEndpoint(this.#db, scope, found.endpointId);
      if (!endpoint) throw deliveryNotFound(deliveryId);
      if (!endpoint.enabled) {
        throw new AforoError(
          "conflict",
          `Webhook endpoint '${endpoint.id}' is disabled; enable it before replaying its deliveries.`,
        );
      }
      const now = this.#clock.now();
      const leaseId = randomUUID();
      const claimed = await store.claimDelivery(this.#db, deliveryId, {
        now,
        leaseUntil: this.#leaseEnd(now),
        leaseId,
        due: false,
        scope,
      });
      if (!claimed) {
        throw new AforoError(
          "conflict",
          `Webhook delivery '${deliveryId}' is being sent right now; retry shortly.`,
        );
      }
      await this.#attempt(claimed, leaseId, "replay");
      return this.delivery(scope, deliveryId);
    });
  }

  /** One attempt under the lease: send, then record the attempt and the delivery's new state. */
  async #attempt(delivery: WebhookDelivery, leaseId: string, trigger: AttemptTrigger): Promise<void> {
    const { endpoint, payload } = await store.attemptMaterial(this.#db, delivery);
    // Deleted meanwhile: its deliveries went with it.
    if (!endpoint || payload === undefined) return;
    let outcome: AttemptOutcome;
    let final = false;
    if (!endpoint.enabled && trigger === "automatic") {
      // Disabled after the event: nothing is sent; the delivery can be replayed once re-enabled.
      outcome = { statusCode: null, responseBody: null, durationMs: 0, error: "the endpoint is disabled" };
      final = true;
    } else {
      outcome = await this.#send(endpoint, delivery, payload);
    }
    const now = this.#clock.now();
    let change = afterAttempt(delivery, outcome, trigger, this.#retryScheduleMs, now);
    if (final) change = { ...change, status: "failed", nextAttemptAt: null };
    const attempt: WebhookAttempt = {
      id: newId("webhookAttempt"),
      deliveryId: delivery.id,
      trigger,
      succeeded: isSuccess(outcome),
      statusCode: outcome.statusCode,
      responseBody: outcome.responseBody,
      durationMs: outcome.durationMs,
      error: outcome.error,
      attemptedAt: now,
    };
    const recorded = await this.#db
      .transaction()
      .execute((trx) => store.recordAttempt(trx, delivery, leaseId, attempt, change));
    // Outlived its lease: the attempt that took over decides what comes next.
    if (!recorded) return;
    if (trigger === "automatic" && change.status === "pending" && change.nextAttemptAt && this.#started) {
      const waitSeconds = Math.max(1, Math.ceil((change.nextAttemptAt.getTime() - now.getTime()) / 1000));
      // If this job is lost, the sweep sends the retry when it is due.
      await this.#jobs
        .send(DELIVER_QUEUE, { deliveryIds: [delivery.id] } satisfies DeliverJob, { startAfter: waitSeconds })
        .catch(() => undefined);
    }
  }

  async #send(
    endpoint: WebhookEndpoint,
    delivery: WebhookDelivery,
    payload: string,
  ): Promise<AttemptOutcome> {
    let secrets: string[];
    try {
      secrets = [await this.#secrets.open(endpoint.secretSealed)];
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      return { statusCode: null, responseBody: null, durationMs: 0, error: `cannot sign: ${reason}` };
    }
    const previous = endpoint.previousSecretSealed;
    if (
      previous &&
      endpoint.previousSecretExpiresAt &&
      endpoint.previousSecretExpiresAt > this.#clock.now()
    ) {
      // Best effort: a previous secret that no longer opens only loses its extra signature.
      const opened = await this.#secrets.open(previous).catch(() => undefined);
      if (opened) secrets.push(opened);
    }
    return send({
      url: endpoint.url,
      messageId: delivery.eventId,
      payload,
      secrets,
      sentAt: this.#wallClock.now(),
      timeoutMs: this.#timeoutMs,
    });
  }

  #leaseEnd(now: Date): Date {
    return new Date(now.getTime() + this.#timeoutMs + LEASE_MARGIN_MS);
  }

  #track<T>(work: () => Promise<T>): Promise<T> {
    const running = work();
    this.#inFlight.add(running);
    void running.then(
      () => this.#inFlight.delete(running),
      () => this.#inFlight.delete(running),
    );
    return running;
  }

  // ---- The delivery log ---------------------------------------------------------------------------

  async deliveries(
    scope: TenantScope,
    endpointId: string,
    filter: { status?: DeliveryStatus | undefined; eventType?: string | undefined },
    page: PageRequest,
  ): Promise<Page<DeliveryView>> {
    await this.get(scope, endpointId);
    const result = await store.listDeliveries(this.#db, scope, endpointId, filter, page);
    return { data: await this.#views(scope, result.data), has_more: result.has_more };
  }

  async delivery(scope: TenantScope, id: string): Promise<DeliveryView> {
    const delivery = await store.findDelivery(this.#db, scope, id);
    if (!delivery) throw deliveryNotFound(id);
    const [view] = await this.#views(scope, [delivery]);
    if (!view) throw deliveryNotFound(id);
    return view;
  }

  async #views(scope: TenantScope, deliveries: WebhookDelivery[]): Promise<DeliveryView[]> {
    const ids = deliveries.map((delivery) => delivery.id);
    const attempts = await store.attemptsOf(this.#db, scope, ids);
    const events = await store.eventsOf(
      this.#db,
      scope,
      deliveries.map((delivery) => delivery.eventId),
    );
    return deliveries.map((delivery) => ({
      delivery,
      attempts: attempts.get(delivery.id) ?? [],
      event: events.get(delivery.eventId),
    }));
  }
}
