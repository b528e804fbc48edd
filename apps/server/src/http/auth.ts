import { AforoError } from "@aforo/core";
import type { FastifyRequest } from "fastify";
import { grants, type Scope } from "../modules/api-keys/domain.ts";
import type { ApiKeyRecord } from "../modules/api-keys/registry.ts";
import type { ApiKeyService } from "../modules/api-keys/service.ts";
import type { Tenant } from "../modules/tenants/domain.ts";
import type { TenantService } from "../modules/tenants/service.ts";
import type { AuthContext, TenantScope } from "./route-config.ts";

const BEARER = /^Bearer\s+(\S+)\s*$/i;

function unauthorized(detail: string): AforoError {
  return new AforoError("unauthorized", detail, { headers: { "WWW-Authenticate": 'Bearer realm="aforo"' } });
}

/**
 * Authenticates every request from memory (keys and tenants are cached), in this order: a
 * well-formed bearer key (401), the tenant header (400), the key's tenant and kind (401), the
 * route's scope (403). Operator and tenant keys are not interchangeable.
 */
export function createAuthHook(keys: ApiKeyService, tenants: TenantService) {
  const authenticateTenant = createTenantAuthenticator(keys, tenants);
  // Synchronous unless the tenant is not in memory yet: a promise per request costs the hot paths.
  return function authenticate(request: FastifyRequest): void | Promise<void> {
    request.auth = undefined;
    if (request.is404) return;
    const config = request.routeOptions.config;
    // Only the versioned API needs a key unless a route says otherwise (docs, health, problems are public).
    const requirement = config.auth ?? (request.routeOptions.url?.startsWith("/v1/") ? "tenant" : "public");
    if (requirement === "public") return;

    if (requirement === "operator") {
      const key = keys.authenticate(presentedKey(request.headers.authorization));
      if (key?.kind !== "operator") {
        throw unauthorized("This operation needs a valid operator key (afo_…).");
      }
      request.auth = { keyId: key.id, kind: "operator", scopes: key.scopes };
      return;
    }

    const auth = authenticateTenant(
      request.headers.authorization,
      request.headers["x-tenant-id"],
      config.scope,
    );
    if (!(auth instanceof Promise)) {
      request.auth = auth;
      return;
    }
    return auth.then((admitted) => {
      request.auth = admitted;
    });
  };
}

function presentedKey(header: string | undefined): string {
  const presented = typeof header === "string" ? BEARER.exec(header)?.[1] : undefined;
  if (!presented) throw unauthorized("Send 'Authorization: Bearer <key>'.");
  return presented;
}

/**
 * A tenant route's authentication from its two headers, without a request object: the Fastify
 * hook and the canAccess fast path (see fast-path.ts) share it. Throws the problem to answer;
 * synchronous unless the tenant is not in memory yet.
 */
export function createTenantAuthenticator(keys: ApiKeyService, tenants: TenantService) {
  return function authenticateTenant(
    authorization: string | undefined,
    tenantHeader: string | string[] | undefined,
    scope: Scope | undefined,
  ): AuthContext | Promise<AuthContext> {
    const key = keys.authenticate(presentedKey(authorization));
    if (typeof tenantHeader !== "string" || tenantHeader.trim() === "") {
      throw new AforoError("missing-tenant", "Send 'X-Tenant-Id' with the tenant's id or slug.");
    }
    if (!key) throw unauthorized("The API key is unknown, revoked or expired.");
    if (key.kind !== "secret") {
      throw unauthorized("This operation needs a tenant secret key (sk_live_… or sk_test_…).");
    }
    const tenantRef = tenantHeader.trim();
    const cached = tenants.resolveCached(tenantRef);
    if (cached) return admitTenantKey(key, cached, tenantRef, scope);
    return tenants.resolve(tenantRef).then((tenant) => admitTenantKey(key, tenant, tenantRef, scope));
  };
}

function admitTenantKey(
  key: ApiKeyRecord,
  tenant: Tenant | undefined,
  tenantRef: string,
  scope: Scope | undefined,
): AuthContext {
  if (!tenant || tenant.id !== key.tenantId || !key.mode) {
    throw unauthorized(`The API key does not belong to tenant '${tenantRef}'.`);
  }
  const auth: AuthContext = {
    keyId: key.id,
    kind: "secret",
    scopes: key.scopes,
    tenant,
    mode: key.mode,
    // A key's own overrides win over its tenant's, class by class.
    rateLimits: tenant.rateLimits || key.rateLimits ? { ...tenant.rateLimits, ...key.rateLimits } : undefined,
  };
  if (scope && !grants(key.scopes, scope)) throw new MissingScope(auth, scope);
  return auth;
}

/**
 * A valid tenant key without the route's scope (403). It carries the key, so the refusal still
 * counts against the key's rate limit and answers its X-RateLimit-* headers, like every response
 * to a known key.
 */
export class MissingScope extends AforoError {
  readonly auth: AuthContext;

  constructor(auth: AuthContext, scope: Scope) {
    super("forbidden", `The API key lacks the '${scope}' scope this operation needs.`);
    this.auth = auth;
  }
}

/** The tenant and mode a tenant-scoped route works in; a route without them is a wiring bug. */
export function tenantScope(request: FastifyRequest): TenantScope {
  const auth = request.auth;
  if (!auth?.tenant || !auth.mode) throw new Error("tenantScope() called on a route without tenant auth");
  return { tenantId: auth.tenant.id, mode: auth.mode };
}
