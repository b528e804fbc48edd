import type { FastifyInstance } from "fastify";

export interface RegisteredRoute {
  method: string;
  url: string;
  hidden: boolean;
}

const registries = new WeakMap<FastifyInstance, RegisteredRoute[]>();

/** Records every route as it is added, so tests can walk them all (OpenAPI coverage, fuzzing). */
export function recordRoutes(app: FastifyInstance): void {
  const routes: RegisteredRoute[] = [];
  registries.set(app, routes);
  app.addHook("onRoute", (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const hidden = Boolean((route.schema as { hide?: boolean } | undefined)?.hide);
    for (const method of methods) {
      if (method === "HEAD") continue;
      routes.push({ method, url: route.url, hidden });
    }
  });
}

export function routesOf(app: FastifyInstance): readonly RegisteredRoute[] {
  return registries.get(app) ?? [];
}
