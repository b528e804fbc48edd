import { createServer } from "node:http";
import { AforoError } from "@aforo/core";
import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerOptions,
  LogController,
} from "fastify";
import type { AppContext } from "./context.ts";
import { createAuthHook, MissingScope } from "./http/auth.ts";
import { registerDocsRoutes, registerOpenApi } from "./http/docs.ts";
import { registerIdempotency } from "./http/idempotency.ts";
import { registerObservability } from "./http/observability.ts";
import { fromFastifyError, sendProblem } from "./http/problem.ts";
import { admitRate } from "./http/rate-limit/limiter.ts";
import { requestIdFor } from "./http/request-id.ts";
import { recordRoutes } from "./http/route-registry.ts";
import "./http/route-config.ts";
import { ProblemSchema } from "./http/schemas.ts";
import { createLazySerializers, registerLazySerializers } from "./http/serialization.ts";
import { createValidatorFactory } from "./http/validation.ts";
import { apiKeyRoutes } from "./modules/api-keys/routes/index.ts";
import { billRunRoutes } from "./modules/bill-runs/routes/index.ts";
import { billingRoutes } from "./modules/billing/routes/index.ts";
import { billingEntityRoutes } from "./modules/billing-entities/routes/index.ts";
import { catalogRoutes } from "./modules/catalog/routes/index.ts";
import { customerRoutes } from "./modules/customers/routes/index.ts";
import { createCanAccessFastPath } from "./modules/entitlements/routes/can-access-fast-path.ts";
import { entitlementsRoutes } from "./modules/entitlements/routes/index.ts";
import { meteringRoutes } from "./modules/metering/routes/index.ts";
import { paymentRoutes } from "./modules/payments/routes/index.ts";
import { pricingRoutes } from "./modules/pricing/routes/index.ts";
import { subscriptionRoutes } from "./modules/subscriptions/routes/index.ts";
import { taxRoutes } from "./modules/taxes/routes/index.ts";
import { tenantRoutes } from "./modules/tenants/routes/index.ts";
import { walletRoutes } from "./modules/wallets/routes/index.ts";
import { webhookRoutes } from "./modules/webhooks/routes/index.ts";

export const BODY_LIMIT_BYTES = 1024 * 1024;

export interface BuildAppOptions {
  logger?: FastifyServerOptions["logger"];
}

/** The whole HTTP API around a context. Tests call it with `inject`; `aforo start` listens. */
export async function buildApp(context: AppContext, options: BuildAppOptions = {}): Promise<FastifyInstance> {
  const { config, clock } = context;
  let shuttingDown = false;
  let closing = false;
  const canAccessFastPath = createCanAccessFastPath(context, { app: () => app, closing: () => closing });
  const validatorFactory = createValidatorFactory();
  const serializers = createLazySerializers();
  const app = Fastify({
    logger: options.logger ?? false,
    genReqId: requestIdFor,
    // One log line per request would cost the hot paths real throughput; errors are logged below.
    logController: new LogController({ disableRequestLogging: true }),
    // Fastify makes a child logger per request to bind its id; that costs every request on the
    // hot paths, while only failures log. They name the request id themselves (error handler).
    childLoggerFactory: (logger) => logger,
    bodyLimit: BODY_LIMIT_BYTES,
    return503OnClosing: true,
    // Fastify's own HTTP/1 server, except that POST /v1/canAccess takes its fast path first.
    serverFactory: (handler, options) => {
      const server = createServer(options.http ?? {}, (request, response) => {
        if (!canAccessFastPath(request, response)) handler(request, response);
      });
      // As Fastify sets up the server it makes (options arrive with Fastify's defaults filled in).
      const { keepAliveTimeout, requestTimeout, connectionTimeout, maxRequestsPerSocket } = options;
      if (typeof keepAliveTimeout === "number") server.keepAliveTimeout = keepAliveTimeout;
      if (typeof requestTimeout === "number") server.requestTimeout = requestTimeout;
      if (typeof connectionTimeout === "number") server.setTimeout(connectionTimeout);
      if (typeof maxRequestsPerSocket === "number" && maxRequestsPerSocket > 0) {
        server.maxRequestsPerSocket = maxRequestsPerSocket;
      }
      return server;
    },
    forceCloseConnections: "idle",
    routerOptions: { ignoreTrailingSlash: true },
    schemaController: {
      compilersFactory: {
        buildValidator: validatorFactory as never,
        buildSerializer: serializers.factory as never,
      },
    },
  });
  recordRoutes(app);
  registerLazySerializers(app, serializers);
  app.decorateRequest("auth", undefined);
  app.addSchema(ProblemSchema);
  app.addHook("preClose", (done) => {
    closing = true;
    done();
  });
  app.addHook("onClose", async () => {
    shuttingDown = true;
  });

  app.setErrorHandler((error: FastifyError | AforoError, request, reply) => {
    const problem = error instanceof AforoError ? error : fromFastifyError(error);
    if (problem.status >= 500) request.log.error({ err: error, reqId: request.id }, "request failed");
    return sendProblem(reply, request, problem, config.publicUrl);
  });
  app.setNotFoundHandler((request, reply) =>
    sendProblem(
      reply,
      request,
      new AforoError("not-found", `No route ${request.method} ${request.url.split("?")[0]}.`),
      config.publicUrl,
    ),
  );

  // One onRequest hook, not three, and synchronous unless a tenant must be loaded: each async hook
  // is a promise per request on the hot paths.
  const authenticate = createAuthHook(context.keys, context.tenants);
  const limitRate = (request: FastifyRequest, reply: FastifyReply): void => {
    const auth = request.auth;
    if (!auth) return;
    const rateClass = request.routeOptions.config.rateLimit ?? "management";
    const verdict = admitRate(context.rateLimiter, auth, rateClass, clock.now().getTime());
    reply.header("X-RateLimit-Limit", verdict.limit);
    reply.header("X-RateLimit-Remaining", verdict.remaining);
    reply.header("X-RateLimit-Reset", verdict.resetAtSeconds);
    if (verdict.refusal) throw verdict.refusal;
  };
  // A known key refused for its scope is still counted and told its limits (a 429 wins over the 403).
  const refusal = (request: FastifyRequest, reply: FastifyReply, error: Error): Error => {
    if (!(error instanceof MissingScope)) return error;
    request.auth = error.auth;
    try {
      limitRate(request, reply);
      return error;
    } catch (limited) {
      return limited as Error;
    } finally {
      request.auth = undefined;
    }
  };
  app.addHook("onRequest", (request, reply, done) => {
    reply.header("X-Request-Id", request.id);
    let pending: void | Promise<void>;
    try {
      pending = authenticate(request);
      if (!pending) limitRate(request, reply);
    } catch (error) {
      done(refusal(request, reply, error as Error));
      return;
    }
    if (!pending) {
      done();
      return;
    }
    pending.then(
      () => {
        try {
          limitRate(request, reply);
          done();
        } catch (error) {
          done(error as Error);
        }
      },
      (error: Error) => done(refusal(request, reply, error)),
    );
  });
  registerIdempotency(app, context.database.db, clock);
  registerObservability(app, context.metrics, context.database, () => shuttingDown);

  await registerOpenApi(app);
  await registerDocsRoutes(app);
  await app.register(tenantRoutes, { context });
  await app.register(apiKeyRoutes, { context });
  await app.register(catalogRoutes, { context });
  await app.register(meteringRoutes, { context });
  await app.register(entitlementsRoutes, { context });
  await app.register(pricingRoutes, { context });
  await app.register(customerRoutes, { context });
  await app.register(subscriptionRoutes, { context });
  await app.register(billRunRoutes, { context });
  await app.register(billingEntityRoutes, { context });
  await app.register(taxRoutes, { context });
  await app.register(billingRoutes, { context });
  await app.register(walletRoutes, { context });
  await app.register(paymentRoutes, { context });
  await app.register(webhookRoutes, { context });
  return app;
}
