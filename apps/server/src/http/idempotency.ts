import { createHash } from "node:crypto";
import { AforoError } from "@aforo/core";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Kysely } from "kysely";
import type { Database } from "../db/schema.ts";

const MAX_KEY_LENGTH = 255;
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
 */
export function registerIdempotency(app: FastifyInstance, db: Kysely<Database>): void {
  /** Claims the key, or replays the stored answer (true when it has answered). */
  const claim = async (request: FastifyRequest, reply: FastifyReply): Promise<boolean> => {
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
    const inserted = await db
      .insertInto("idempotency_requests")
      .values({ ...scope, method: request.method, path: request.url, body_hash: bodyHash })
      .onConflict((oc) => oc.doNothing())
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
      .executeTakeFirstOrThrow();
    if (stored.body_hash !== bodyHash) {
      throw new AforoError(
        "idempotency-key-reused",
        `Idempotency-Key '${header}' was used for a different request (${stored.method} ${stored.path} with another body).`,
      );
    }
    if (stored.status_code === null || stored.response_body === null) {
      throw new AforoError(
        "idempotency-request-in-progress",
        `The request with Idempotency-Key '${header}' is still running.`,
      );
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
