import type { FastifyInstance } from "fastify";
import { collectDefaultMetrics, Histogram, Registry } from "prom-client";
import type { DatabaseHandle } from "../db/database.ts";

export interface Metrics {
  registry: Registry;
  httpDuration: Histogram<"method" | "route" | "status_code">;
  /** Records one answered request in httpDuration (the Fastify hook and the canAccess fast path). */
  observeRequest(method: string, route: string, statusCode: number, seconds: number): void;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const httpDuration = new Histogram({
    name: "aforo_http_request_duration_seconds",
    help: "HTTP request duration, by route and status",
    labelNames: ["method", "route", "status_code"] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  // One labelled child per method, route and status, made once: observe() with a label object
  // hashes the labels on every request.
  const children = new Map<string, { observe(seconds: number): void }>();
  const observeRequest = (method: string, route: string, statusCode: number, seconds: number) => {
    const id = `${method} ${statusCode} ${route}`;
    let child = children.get(id);
    if (!child) {
      child = httpDuration.labels(method, route, String(statusCode));
      children.set(id, child);
    }
    child.observe(seconds);
  };
  return { registry, httpDuration, observeRequest };
}

export function registerObservability(
  app: FastifyInstance,
  metrics: Metrics,
  database: DatabaseHandle,
  isShuttingDown: () => boolean,
): void {
  app.addHook("onResponse", (request, reply, done) => {
    const route = request.routeOptions.url ?? "unmatched";
    metrics.observeRequest(request.method, route, reply.statusCode, reply.elapsedTime / 1000);
    done();
  });

  const hidden = { schema: { hide: true }, config: { auth: "public" as const }, logLevel: "warn" as const };
  app.get("/healthz", hidden, async () => ({ status: "ok" }));
  app.get("/readyz", hidden, async (_request, reply) => {
    if (isShuttingDown()) return reply.code(503).send({ status: "shutting_down" });
    try {
      await database.ping();
      return { status: "ready", database: database.kind };
    } catch {
      return reply.code(503).send({ status: "unavailable", database: database.kind });
    }
  });
  app.get("/metrics", hidden, async (_request, reply) => {
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
}
