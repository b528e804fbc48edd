import type { Mode } from "../db/schema.ts";
import type { Scope } from "../modules/api-keys/domain.ts";
import type { Tenant } from "../modules/tenants/domain.ts";

/** Which budget a route draws from; the contract sets each one's default. */
export type RateLimitClass = "meter" | "canAccess" | "entitlements" | "management";

export type AuthRequirement = "public" | "operator" | "tenant";

export interface AuthContext {
  keyId: string;
  kind: "operator" | "secret";
  scopes: readonly string[];
  /** Present for tenant keys. */
  tenant?: Tenant;
  mode?: Mode;
  rateLimits?: Record<string, { limit: number; burst: number }> | undefined;
}

/** The part of the auth context tenant-scoped routes use: every query is scoped by both. */
export interface TenantScope {
  tenantId: string;
  mode: Mode;
}

declare module "fastify" {
  interface FastifyContextConfig {
    /** Who may call the route; tenant routes also need `scope`. Defaults to "tenant". */
    auth?: AuthRequirement;
    scope?: Scope;
    rateLimit?: RateLimitClass;
    /** Set false on routes with their own idempotency (events carry idempotency keys). */
    idempotent?: boolean;
  }
  interface FastifyRequest {
    auth: AuthContext | undefined;
  }
}
