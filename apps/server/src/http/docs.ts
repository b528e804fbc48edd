import { type ProblemSlug, problemCatalogue } from "@aforo/core";
import swagger from "@fastify/swagger";
import scalar from "@scalar/fastify-api-reference";
import type { FastifyInstance } from "fastify";

export const OPENAPI_INFO = {
  title: "Aforo API",
  version: "0.1.0",
  description:
    "The monetization control plane: metering, entitlements, pricing and billing. Authenticate with `Authorization: Bearer <key>` and name the tenant with `X-Tenant-Id`. Errors are RFC 9457 problem documents; see `/problems`.",
};

/** OpenAPI 3.1 generated from the route schemas; must be registered before any route. */
export async function registerOpenApi(app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: OPENAPI_INFO,
      components: {
        securitySchemes: {
          bearerAuth: {
            type: "http",
            scheme: "bearer",
            description: "sk_live_/sk_test_ secret key, or afo_ operator key",
          },
          tenantId: { type: "apiKey", in: "header", name: "X-Tenant-Id" },
        },
      },
      security: [{ bearerAuth: [], tenantId: [] }],
    },
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`) },
  });
}

export async function registerDocsRoutes(app: FastifyInstance): Promise<void> {
  app.get("/openapi.json", { schema: { hide: true }, config: { auth: "public" } }, async () => app.swagger());
  await app.register(scalar, {
    routePrefix: "/docs",
    configuration: { url: "/openapi.json", title: "Aforo API" },
  });
  app.get("/problems", { schema: { hide: true }, config: { auth: "public" } }, async (_request, reply) => {
    const items = Object.entries(problemCatalogue)
      .map(
        ([slug, p]) =>
          `<li><a href="/problems/${slug}"><code>${slug}</code></a> — ${p.status} ${p.title}</li>`,
      )
      .join("\n");
    return reply.type("text/html; charset=utf-8").send(page("Aforo problem types", `<ul>${items}</ul>`));
  });
  app.get<{ Params: { slug: string } }>(
    "/problems/:slug",
    { schema: { hide: true }, config: { auth: "public" } },
    async (request, reply) => {
      const slug = request.params.slug;
      if (!Object.hasOwn(problemCatalogue, slug)) return reply.callNotFound();
      const problem = problemCatalogue[slug as ProblemSlug];
      const body = `<p><strong>HTTP ${problem.status} — ${escapeHtml(problem.title)}</strong></p>
<p>${escapeHtml(problem.description)}</p>
<p>Responses of this type are <code>application/problem+json</code> documents (RFC 9457) with <code>type</code>,
<code>title</code>, <code>status</code>, <code>detail</code> and <code>instance</code> (the request id, also in
<code>X-Request-Id</code>).</p><p><a href="/problems">All problem types</a></p>`;
      return reply.type("text/html; charset=utf-8").send(page(`${problem.title} (${slug})`, body));
    },
  );
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c] ?? c);
}

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:46rem;margin:3rem auto;padding:0 1rem;line-height:1.5}</style>
</head><body><h1>${escapeHtml(title)}</h1>${body}</body></html>`;
}
