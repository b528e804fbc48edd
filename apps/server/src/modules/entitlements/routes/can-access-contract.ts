import { AforoError, type ProblemSlug } from "@aforo/core";
import { Histogram, type Registry } from "prom-client";
import { type Static, Type } from "typebox";
import type { AppContext } from "../../../context.ts";
import type { TenantScope } from "../../../http/route-config.ts";
import type { DecisionReason } from "../domain/decision.ts";
import type { CanAccessOutcome } from "../service.ts";

export const CanAccessBody = Type.Object({
  customer_id: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
  api_key: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 200,
      description: "a consumer key (ak_…) instead of customer_id",
    }),
  ),
  feature: Type.String({ minLength: 1, maxLength: 100 }),
  quantity: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1_000_000_000, default: 1 })),
  consume: Type.Optional(
    Type.Boolean({ default: false, description: "check and add the quantity to usage in one atomic step" }),
  ),
  idempotency_key: Type.Optional(
    Type.String({ minLength: 1, maxLength: 200, description: "names the usage a consuming check records" }),
  ),
});

export const AllowedSchema = Type.Object({
  allowed: Type.Boolean(),
  decision: Type.Union([Type.Literal("allow"), Type.Literal("throttle")]),
  reason: Type.String(),
  plan: Type.Union([Type.String(), Type.Null()]),
  feature: Type.String(),
  customer_id: Type.String(),
  remaining_quota: Type.Union([Type.Number(), Type.Null()]),
  quota_reset: Type.Union([Type.String(), Type.Null()]),
  entitlements: Type.Object({
    type: Type.String(),
    limit: Type.Union([Type.Number(), Type.Null()]),
    used: Type.Union([Type.Number(), Type.Null()]),
    reset: Type.Union([Type.String(), Type.Null()]),
    overage: Type.Union([Type.String(), Type.Null()]),
  }),
});

const blockSlugs: Record<
  Exclude<DecisionReason, "allowed" | "quota_exceeded_throttled" | "quota_exceeded_overage_allowed">,
  ProblemSlug
> = {
  subscription_inactive: "subscription-inactive",
  feature_not_in_plan: "feature-not-entitled",
  quota_exceeded: "quota-exceeded",
  rate_limited: "feature-rate-limited",
  wallet_empty: "wallet-empty",
};

function blockDetail(outcome: CanAccessOutcome, feature: string): string {
  switch (outcome.decision.reason) {
    case "subscription_inactive":
      return "The customer has no active subscription.";
    case "feature_not_in_plan":
      return `The customer's plan does not include '${feature}'.`;
    case "quota_exceeded":
      return `The customer has used the quota of '${feature}' for this period.`;
    case "rate_limited":
      return `The customer exceeded the rate limit of '${feature}'.`;
    case "wallet_empty":
      return "The customer's prepaid balance is exhausted.";
    default:
      return "Access denied.";
  }
}

export type CanAccessRequestBody = Static<typeof CanAccessBody>;
export type CanAccessAllowed = Static<typeof AllowedSchema>;

/** What canAccess answers: 200 with a body (and X-Aforo-Throttle on a throttle), or a problem. */
export type CanAccessAnswer =
  | { allowed: true; throttle: boolean; body: CanAccessAllowed }
  | { allowed: false; problem: AforoError };

/** The decision time histogram in /metrics (one per registry). */
export function decisionHistogram(registry: Registry): Histogram {
  const existing = registry.getSingleMetric("aforo_entitlement_decision_seconds");
  if (existing) return existing as Histogram;
  return new Histogram({
    name: "aforo_entitlement_decision_seconds",
    help: "Time canAccess spends deciding, inside the server (no I/O on this path)",
    buckets: [0.000005, 0.00001, 0.00002, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.005],
    registers: [registry],
  });
}

/**
 * Decides and shapes the answer, for the Fastify route and the fast path alike (fast-path.ts):
 * the same body, the same problem, byte for byte. Errors the decision throws (an unknown
 * customer or key) propagate as they are.
 */
export function answerCanAccess(
  context: AppContext,
  scope: TenantScope,
  body: CanAccessRequestBody,
  decisionSeconds: Histogram,
): CanAccessAnswer {
  const started = process.hrtime.bigint();
  const outcome = context.entitlements.canAccess(scope, body);
  decisionSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
  const { decision } = outcome;
  const grant = decision.grant;
  const resetAt = decision.resetAtMs === null ? null : new Date(decision.resetAtMs).toISOString();
  if (!decision.allowed) {
    const slug = blockSlugs[decision.reason as keyof typeof blockSlugs] ?? "feature-not-entitled";
    const retryAfter =
      decision.resetAtMs === null
        ? undefined
        : Math.max(1, Math.ceil((decision.resetAtMs - context.clock.now().getTime()) / 1000));
    return {
      allowed: false,
      problem: new AforoError(slug, blockDetail(outcome, body.feature), {
        extensions: {
          allowed: false,
          decision: "block",
          reason: decision.reason,
          tenant_id: scope.tenantId,
          customer_id: outcome.customerId,
          feature: body.feature,
          remaining: decision.remaining ?? 0,
          reset_at: resetAt,
        },
        ...(retryAfter !== undefined && (slug === "quota-exceeded" || slug === "feature-rate-limited")
          ? { headers: { "Retry-After": String(retryAfter) } }
          : {}),
      }),
    };
  }
  return {
    allowed: true,
    throttle: decision.decision === "throttle",
    body: {
      allowed: true,
      decision: decision.decision === "throttle" ? "throttle" : "allow",
      reason: decision.reason,
      plan: outcome.planName,
      feature: body.feature,
      customer_id: outcome.customerId,
      remaining_quota: decision.remaining,
      quota_reset: resetAt,
      entitlements: {
        type: grant?.type ?? "boolean",
        limit: grant?.type === "metered" || grant?.type === "rate_limit" ? grant.limit : null,
        used: decision.used,
        reset: grant?.type === "metered" ? grant.reset : null,
        overage: grant?.type === "metered" ? grant.overage : null,
      },
    },
  };
}
