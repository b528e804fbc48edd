import type { FastifyInstance } from "fastify";
import { collectDefaultMetrics, Histogram, Registry } from "prom-client";
import type { DatabaseHandle } from "../db/database.ts";

export interface Metrics {
  registry: Registry;
  httpDuration: Histogram<"method" | "route" | "status_code">;
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
  return { registry, httpDuration };
}

export function registerObservability(
  app: FastifyInstance,
  metrics: Metrics,
  database: DatabaseHandle,
  isShuttingDown: () => boolean,
): void {
  // One labelled child per method, route and status, made once: observe() with a label object
  // hashes the labels on every request.
  const children = new Map<string, { observe(seconds: number): void }>();
  app.addHook("onResponse", (request, reply, done) => {
    const route = request.routeOptions.url ?? "unmatched";
    const id = `${request.method} ${reply.statusCode} ${route}`;
    let child = children.get(id);
    if (!child) {
      child = metrics.httpDuration.labels(request.method, route, String(reply.statusCode));
      children.set(id, child);
    }
    child.observe(reply.elapsedTime / 1000);
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
