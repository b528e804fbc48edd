import type { IncomingMessage, ServerResponse } from "node:http";
import { AforoError } from "@aforo/core";
import type { FastifyError, FastifyInstance } from "fastify";
import type { AppContext } from "../../../context.ts";
import { createTenantAuthenticator, MissingScope } from "../../../http/auth.ts";
import { fromFastifyError, PROBLEM_CONTENT_TYPE, toProblem } from "../../../http/problem.ts";
import { admitRate } from "../../../http/rate-limit/limiter.ts";
import { requestIdFor } from "../../../http/request-id.ts";
import type { AuthContext, TenantScope } from "../../../http/route-config.ts";
import { buildValidatorCompiler } from "../../../http/validation.ts";
import {
  answerCanAccess,
  CanAccessBody,
  type CanAccessRequestBody,
  decisionHistogram,
} from "./can-access-contract.ts";

export const CAN_ACCESS_PATH = "/v1/canAccess";
/** Bodies above this (or of unknown length) go through Fastify, which owns the body limit. */
const MAX_FAST_BODY_BYTES = 16 * 1024;
const JSON_CONTENT_TYPE = "application/json; charset=utf-8";

/** Requests the fast path has taken, in this process (tests prove which path answered). */
export const fastPathStats = { handled: 0 };

export interface FastPathHost {
  /** The Fastify app, once built: its logger and its JSON body parser. */
  app: () => FastifyInstance;
  /** True from the moment the app starts closing: Fastify then answers 503 itself. */
  closing: () => boolean;
}

/**
 * POST /v1/canAccess without Fastify's request lifecycle. Gateways call it before every request
 * they pass, so its cost is theirs: Fastify's routing, hooks, reply object and serializer cost
 * more than the decision itself (the bench's `can_access` row against `bare_post`). This handler
 * does the same steps with the same code — request id, tenant authentication, rate limit, Fastify's
 * own JSON parser, the route's schema with the same validator options, answerCanAccess, the same
 * problem documents and metrics — and a test (can-access-fast-path.int.test.ts) holds it to the
 * Fastify route's answers, byte for byte. Requests it does not take (another content type, no or a
 * large Content-Length, a query string, a closing server) go through Fastify untouched.
 */
export function createCanAccessFastPath(context: AppContext, host: FastPathHost) {
  const authenticate = createTenantAuthenticator(context.keys, context.tenants);
  const validate = buildValidatorCompiler()({
    schema: CanAccessBody,
    httpPart: "body",
    method: "POST",
    url: CAN_ACCESS_PATH,
  }) as ((body: unknown) => boolean) & { errors?: unknown[] | null };
  const decisionSeconds = decisionHistogram(context.metrics.registry);
  let parseJson: ((body: string) => unknown) | undefined;
  const jsonParser = () => {
    if (!parseJson) {
      const parser = host.app().getDefaultJsonParser("error", "error");
      parseJson = (body) => {
        let result: { error: Error | null; value: unknown } = { error: null, value: undefined };
        parser({} as never, body, (error: Error | null, value: unknown) => {
          result = { error, value };
        });
        if (result.error) throw result.error;
        return result.value;
      };
    }
    return parseJson;
  };

  /** Takes the request (true) or leaves it to Fastify (false) before reading anything. */
  return function handle(request: IncomingMessage, response: ServerResponse): boolean {
    if (request.method !== "POST" || request.url !== CAN_ACCESS_PATH || host.closing()) return false;
    const headers = request.headers;
    const contentType = headers["content-type"];
    if (
      contentType === undefined ||
      !(contentType === "application/json" || contentType.startsWith("application/json;")) ||
      headers["transfer-encoding"] !== undefined
    ) {
      return false;
    }
    const length = Number(headers["content-length"]);
    if (!Number.isInteger(length) || length > MAX_FAST_BODY_BYTES) return false;

    fastPathStats.handled += 1;
    const startedMs = performance.now();
    const requestId = requestIdFor(request);
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const body =
        chunks.length === 1 ? (chunks[0] as Buffer).toString("utf8") : Buffer.concat(chunks).toString("utf8");
      const answered = respond(body, request, requestId);
      if (answered instanceof Promise) {
        answered.then(
          (reply) => send(response, reply, startedMs),
          (error: unknown) =>
            send(response, problemReply(error, { "x-request-id": requestId }, requestId), startedMs),
        );
      } else {
        send(response, answered, startedMs);
      }
    });
    return true;
  };

  function respond(body: string, request: IncomingMessage, requestId: string): Reply | Promise<Reply> {
    const headers: Record<string, string | number> = { "x-request-id": requestId };
    try {
      const auth = authenticate(
        request.headers.authorization,
        request.headers["x-tenant-id"],
        "entitlements:read",
      );
      if (auth instanceof Promise) {
        return auth.then(
          (admitted) => decide(admitted, body, headers, requestId),
          (error: unknown) => problemReply(refusal(error, headers), headers, requestId),
        );
      }
      return decide(auth, body, headers, requestId);
    } catch (error) {
      return problemReply(refusal(error, headers), headers, requestId);
    }
  }

  /** As app.ts: a known key refused for its scope is counted and told its limits (429 wins). */
  function refusal(error: unknown, headers: Record<string, string | number>): unknown {
    if (!(error instanceof MissingScope)) return error;
    const verdict = admitRate(context.rateLimiter, error.auth, "canAccess", context.clock.now().getTime());
    headers["x-ratelimit-limit"] = verdict.limit;
    headers["x-ratelimit-remaining"] = verdict.remaining;
    headers["x-ratelimit-reset"] = verdict.resetAtSeconds;
    return verdict.refusal ?? error;
  }

  function decide(
    auth: AuthContext,
    text: string,
    headers: Record<string, string | number>,
    requestId: string,
  ): Reply {
    try {
      const verdict = admitRate(context.rateLimiter, auth, "canAccess", context.clock.now().getTime());
      headers["x-ratelimit-limit"] = verdict.limit;
      headers["x-ratelimit-remaining"] = verdict.remaining;
      headers["x-ratelimit-reset"] = verdict.resetAtSeconds;
      if (verdict.refusal) throw verdict.refusal;
      const body = jsonParser()(text);
      if (!validate(body)) {
        throw Object.assign(new Error("body validation failed"), {
          validation: validate.errors,
          validationContext: "body",
          statusCode: 400,
        });
      }
      const scope: TenantScope = {
        tenantId: auth.tenant?.id as string,
        mode: auth.mode as TenantScope["mode"],
      };
      const answer = answerCanAccess(context, scope, body as CanAccessRequestBody, decisionSeconds);
      if (!answer.allowed) return problemReply(answer.problem, headers, requestId);
      if (answer.throttle) headers["x-aforo-throttle"] = "true";
      const payload = JSON.stringify(answer.body);
      headers["content-type"] = JSON_CONTENT_TYPE;
      headers["content-length"] = Buffer.byteLength(payload);
      return { status: 200, headers, payload };
    } catch (error) {
      return problemReply(error, headers, requestId);
    }
  }

  function problemReply(error: unknown, headers: Record<string, string | number>, requestId: string): Reply {
    const problem = error instanceof AforoError ? error : fromFastifyError(error as FastifyError);
    if (problem.status >= 500) host.app().log.error({ err: error, reqId: requestId }, "request failed");
    for (const [name, value] of Object.entries(problem.headers ?? {})) headers[name.toLowerCase()] = value;
    const payload = JSON.stringify(toProblem(problem, context.config.publicUrl, requestId));
    headers["content-type"] = `${PROBLEM_CONTENT_TYPE}; charset=utf-8`;
    headers["content-length"] = Buffer.byteLength(payload);
    return { status: problem.status, headers, payload };
  }

  function send(response: ServerResponse, reply: Reply, startedMs: number): void {
    response.writeHead(reply.status, reply.headers);
    response.end(reply.payload);
    context.metrics.observeRequest(
      "POST",
      CAN_ACCESS_PATH,
      reply.status,
      (performance.now() - startedMs) / 1000,
    );
  }
}

interface Reply {
  status: number;
  headers: Record<string, string | number>;
  payload: string;
}
