import { AforoError } from "@aforo/core";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance } from "fastify";
import { Type } from "typebox";
import type { AppContext } from "../../../context.ts";
import { tenantScope } from "../../../http/auth.ts";
import { IdParams, listOf, PaginationQuery, problemResponses } from "../../../http/schemas.ts";
import { allScopes } from "../domain.ts";
import type { ApiKeyRecord } from "../registry.ts";

const RateLimitOverride = Type.Object({
  limit: Type.Integer({ minimum: 1, description: "requests per minute" }),
  burst: Type.Integer({ minimum: 1 }),
});

const ApiKeySchema = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal("api_key"),
    kind: Type.Union([Type.Literal("secret"), Type.Literal("consumer")]),
    mode: Type.Union([Type.Literal("live"), Type.Literal("test")]),
    name: Type.Union([Type.String(), Type.Null()]),
    scopes: Type.Array(Type.String()),
    redacted_key: Type.String({ description: "prefix and last four characters" }),
    status: Type.Union(
      [
        Type.Literal("active"),
        Type.Literal("expiring"),
        Type.Literal("expired"),
        Type.Literal("revoked"),
        Type.Literal("suspended"),
      ],
      { description: "suspended: a consumer key of a SUSPENDED subscription, refused until it is paid up" },
    ),
    subscription_id: Type.Union([Type.String(), Type.Null()]),
    created_at: Type.String(),
    expires_at: Type.Union([Type.String(), Type.Null()]),
    revoked_at: Type.Union([Type.String(), Type.Null()]),
    suspended_at: Type.Union([Type.String(), Type.Null()]),
    rotated_to: Type.Union([Type.String(), Type.Null()]),
  },
  { $id: "ApiKey" },
);

const IssuedKeySchema = Type.Intersect([
  Type.Ref("ApiKey"),
  Type.Object({ key: Type.String({ description: "the secret, shown only in this response" }) }),
]);

export function toApi(key: ApiKeyRecord, now: Date) {
  const status = key.revokedAt
    ? "revoked"
    : key.expiresAt && key.expiresAt <= now
      ? "expired"
      : key.suspendedAt
        ? "suspended"
        : key.expiresAt
          ? "expiring"
          : "active";
  return {
    id: key.id,
    object: "api_key" as const,
    kind: key.kind === "consumer" ? ("consumer" as const) : ("secret" as const),
    mode: key.mode ?? "live",
    name: key.name,
    scopes: key.scopes,
    redacted_key: `${key.prefix}…${key.last4}`,
    status: status as "active" | "expiring" | "expired" | "revoked" | "suspended",
    subscription_id: key.subscriptionId,
    created_at: key.createdAt.toISOString(),
    expires_at: key.expiresAt?.toISOString() ?? null,
    revoked_at: key.revokedAt?.toISOString() ?? null,
    suspended_at: key.suspendedAt?.toISOString() ?? null,
    rotated_to: key.rotatedTo,
  };
}

const tags = ["API keys"];
const read = { scope: "keys:read" as const };
const write = { scope: "keys:write" as const };

export async function apiKeyRoutes(app: FastifyInstance, { context }: { context: AppContext }) {
  const routes = app.withTypeProvider<TypeBoxTypeProvider>();
  app.addSchema(ApiKeySchema);
  const now = () => context.clock.now();

  routes.post(
    "/v1/api_keys",
    {
      config: write,
      schema: {
        tags,
        summary: "Create a secret key for this tenant",
        description: `Scopes: ${allScopes.join(", ")}. A write scope implies read. A sandbox key can only create sandbox keys.`,
        body: Type.Object({
          mode: Type.Union([Type.Literal("live"), Type.Literal("test")]),
          scopes: Type.Optional(Type.Array(Type.String({ maxLength: 40 }), { maxItems: 30 })),
          name: Type.Optional(Type.String({ maxLength: 200 })),
          rate_limits: Type.Optional(
            Type.Object({
              meter: Type.Optional(RateLimitOverride),
              canAccess: Type.Optional(RateLimitOverride),
              entitlements: Type.Optional(RateLimitOverride),
              management: Type.Optional(RateLimitOverride),
            }),
          ),
        }),
        response: { 201: IssuedKeySchema, ...problemResponses(422) },
      },
    },
    async (request, reply) => {
      const scope = tenantScope(request);
      if (scope.mode === "test" && request.body.mode === "live") {
        throw new AforoError("forbidden", "A sandbox (sk_test_) key cannot create live keys.");
      }
      const issued = await context.keys.create({
        tenantId: scope.tenantId,
        mode: request.body.mode,
        kind: "secret",
        scopes: request.body.scopes,
        name: request.body.name,
        rateLimits: request.body.rate_limits,
      });
      return reply.code(201).send({ ...toApi(issued.record, now()), key: issued.secret });
    },
  );

  routes.get(
    "/v1/api_keys",
    {
      config: read,
      schema: {
        tags,
        summary: "List this mode's keys (secrets are never shown again)",
        querystring: PaginationQuery,
        response: { 200: listOf(Type.Ref("ApiKey")), ...problemResponses() },
      },
    },
    async (request) => {
      const scope = tenantScope(request);
      const page = await context.keys.list(scope.tenantId, scope.mode, {
        limit: request.query.limit,
        startingAfter: request.query.starting_after,
      });
      return { data: page.data.map((key) => toApi(key, now())), has_more: page.has_more };
    },
  );

  routes.get(
    "/v1/api_keys/:id",
    {
      config: read,
      schema: {
        tags,
        summary: "Get a key",
        params: IdParams,
        response: { 200: Type.Ref("ApiKey"), ...problemResponses(404) },
      },
    },
    async (request) => {
      const scope = tenantScope(request);
      return toApi(await context.keys.get(scope.tenantId, scope.mode, request.params.id), now());
    },
  );

  routes.post(
    "/v1/api_keys/:id/rotate",
    {
      config: write,
      schema: {
        tags,
        summary: "Rotate a key: a successor is issued and the old key keeps working for 5 minutes",
        params: IdParams,
        response: { 201: IssuedKeySchema, ...problemResponses(404, 409) },
      },
    },
    async (request, reply) => {
      const scope = tenantScope(request);
      const issued = await context.keys.rotate(scope.tenantId, scope.mode, request.params.id);
      return reply.code(201).send({ ...toApi(issued.record, now()), key: issued.secret });
    },
  );

  const revoke = {
    config: write,
    schema: {
      tags,
      summary: "Revoke a key at once",
      params: IdParams,
      response: { 200: Type.Ref("ApiKey"), ...problemResponses(404) },
    },
  };
  const revokeHandler = async (request: { params: { id: string } } & Parameters<typeof tenantScope>[0]) => {
    const scope = tenantScope(request);
    return toApi(await context.keys.revoke(scope.tenantId, scope.mode, request.params.id), now());
  };
  routes.post("/v1/api_keys/:id/revoke", revoke, revokeHandler);
  routes.delete("/v1/api_keys/:id", revoke, revokeHandler);
}
