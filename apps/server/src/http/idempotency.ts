import { createHash } from "node:crypto";
import { AforoError } from "@aforo/core";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { type Kysely, sql } from "kysely";
import type { Clock } from "../clock.ts";
import type { Database } from "../db/schema.ts";
import type { JobQueue } from "../jobs/queue.ts";

const MAX_KEY_LENGTH = 255;

/**
 * How long a key is remembered, as Stripe does: a replay within 24 hours gets the first answer;
 * after that the key is free, and a request that never answered (its process died mid-request,
 * so it stayed "in progress") can be sent again.
 */
export const IDEMPOTENCY_RETENTION_MS = 24 * 3_600_000;
interface Claim {
  tenantId: string;
  mode: "live" | "test";
  key: string;
}

const claims = new WeakMap<FastifyRequest, Claim>();

function fingerprint(request: FastifyRequest): string {
  return createHash("sha256")
    .update(`${request.method} ${request.url}\n`)
    .update(JSON.stringify(request.body ?? null))
    .digest("hex");
}

/**
 * `Idempotency-Key` on any POST: the first response is stored and replayed for the same key and
 * body; another body under the same key is a 409. A 5xx is not stored, so the client may retry.
 * A key older than IDEMPOTENCY_RETENTION_MS counts as unused (sweepIdempotencyRecords removes it).
 */
export function registerIdempotency(app: FastifyInstance, db: Kysely<Database>, clock: Clock): void {
  /** Claims the key, or replays the stored answer (true when it has answered). */
  const claim = async (request: FastifyRequest, reply: FastifyReply, attempt = 1): Promise<boolean> => {
    const header = request.headers["idempotency-key"];
    const auth = request.auth;
    if (typeof header !== "string" || !auth?.tenant || !auth.mode) return false;
    if (header.length === 0 || header.length > MAX_KEY_LENGTH) {
      throw new AforoError("validation-failed", "Idempotency-Key must be 1 to 255 characters.", {
        errors: [{ field: "Idempotency-Key", message: "must be 1 to 255 characters" }],
      });
    }
    const scope = { tenant_id: auth.tenant.id, mode: auth.mode, key: header };
    const bodyHash = fingerprint(request);
    const now = clock.now();
    const claimed = { method: request.method, path: request.url, body_hash: bodyHash, created_at: now };
    // A stored key past retention is taken over in the same statement, as if it were not there.
    const inserted = await db
      .insertInto("idempotency_requests")
      .values({ ...scope, ...claimed })
      .onConflict((oc) =>
        oc
          .columns(["tenant_id", "mode", "key"])
          .doUpdateSet({ ...claimed, status_code: null, response_body: null, response_headers: null })
          .where(
            sql<boolean>`idempotency_requests.created_at < ${expiredBefore(now).toISOString()}::timestamptz`,
          ),
      )
      .executeTakeFirst();
    if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) === 1) {
      claims.set(request, { tenantId: scope.tenant_id, mode: scope.mode, key: header });
      return false;
    }
    const stored = await db
      .selectFrom("idempotency_requests")
      .selectAll()
      .where("tenant_id", "=", scope.tenant_id)
      .where("mode", "=", scope.mode)
      .where("key", "=", header)
      .executeTakeFirst();
    // Deleted since the claim failed (swept at expiry, or freed by a 5xx): claim it again, once.
    if (!stored) {
      if (attempt < 2) return claim(request, reply, attempt + 1);
      throw inProgress(header);
    }
    if (stored.body_hash !== bodyHash) {
      throw new AforoError(
        "idempotency-key-reused",
        `Idempotency-Key '${header}' was used for a different request (${stored.method} ${stored.path} with another body).`,
      );
    }
    if (stored.status_code === null || stored.response_body === null) {
      throw inProgress(header);
    }
    for (const [name, value] of Object.entries(stored.response_headers ?? {})) reply.header(name, value);
    reply.code(stored.status_code).header("Idempotent-Replayed", "true").send(stored.response_body);
    return true;
  };

  // Synchronous for the requests without a key (almost all of them): no promise per request.
  app.addHook("preHandler", (request, reply, done) => {
    if (
      request.method !== "POST" ||
      request.routeOptions.config.idempotent === false ||
      request.headers["idempotency-key"] === undefined
    ) {
      done();
      return;
    }
    claim(request, reply).then(
      (answered) => {
        if (!answered) done();
      },
      (error: Error) => done(error),
    );
  });

  app.addHook("onSend", (request, reply, payload, done) => {
    const claimed = claims.get(request);
    if (!claimed) {
      done(null, payload);
      return;
    }
    claims.delete(request);
    record(claimed, reply, payload).then(
      () => done(null, payload),
      (error: Error) => done(error),
    );
  });

  /** Stores the answer for replays; a 5xx (or a streamed body) frees the key so the client may retry. */
  const record = async (claim: Claim, reply: FastifyReply, payload: unknown): Promise<void> => {
    const where = db
      .updateTable("idempotency_requests")
      .where("tenant_id", "=", claim.tenantId)
      .where("mode", "=", claim.mode)
      .where("key", "=", claim.key);
    if (reply.statusCode >= 500 || typeof payload !== "string") {
      await db
        .deleteFrom("idempotency_requests")
        .where("tenant_id", "=", claim.tenantId)
        .where("mode", "=", claim.mode)
        .where("key", "=", claim.key)
        .execute();
      return;
    }
    const contentType = String(reply.getHeader("content-type") ?? "application/json");
    await where
      .set({
        status_code: reply.statusCode,
        response_body: payload,
        response_headers: JSON.stringify({ "content-type": contentType }),
      })
      .execute();
  };
}

function inProgress(key: string): AforoError {
  return new AforoError(
    "idempotency-request-in-progress",
    `The request with Idempotency-Key '${key}' is still running.`,
  );
}

function expiredBefore(now: Date): Date {
  return new Date(now.getTime() - IDEMPOTENCY_RETENTION_MS);
}

/** Deletes the keys past retention, a slice at a time (short statements); answers how many. */
export async function sweepIdempotencyRecords(
  db: Kysely<Database>,
  now: Date,
  sliceSize = 10_000,
): Promise<number> {
  let deleted = 0;
  for (;;) {
    const cutoff = expiredBefore(now).toISOString();
    // The age is checked again on the row deleted: a claim may have taken the key over meanwhile.
    const result = await sql`
      delete from idempotency_requests
      where created_at < ${cutoff}::timestamptz and (tenant_id, mode, key) in (
        select tenant_id, mode, key from idempotency_requests
        where created_at < ${cutoff}::timestamptz
        limit ${sliceSize}
      )
    `.execute(db);
    const count = Number(result.numAffectedRows ?? 0n);
    deleted += count;
    if (count < sliceSize) return deleted;
  }
}

export const IDEMPOTENCY_SWEEP_JOB = "idempotency.sweep";
/** Hourly, once across all processes. */
const IDEMPOTENCY_SWEEP_CRON = "17 * * * *";

/** Registers the hourly sweep of expired keys on the job queue. */
export async function scheduleIdempotencySweep(
  jobs: JobQueue,
  db: Kysely<Database>,
  clock: Clock,
): Promise<void> {
  await jobs.work(IDEMPOTENCY_SWEEP_JOB, async () => {
    await sweepIdempotencyRecords(db, clock.now());
  });
  await jobs.schedule(IDEMPOTENCY_SWEEP_JOB, IDEMPOTENCY_SWEEP_CRON);
}
