import { AforoError } from "@aforo/core";
import type { AuthContext, RateLimitClass } from "../route-config.ts";
import { type Bucket, type BucketPolicy, type TakeResult, takeToken } from "./token-bucket.ts";

/** The contract's defaults, per key; tenants and keys may override them. */
export const defaultRateLimits: Record<RateLimitClass, BucketPolicy> = {
  meter: { limitPerMinute: 10_000, burst: 1_000 },
  canAccess: { limitPerMinute: 50_000, burst: 5_000 },
  entitlements: { limitPerMinute: 5_000, burst: 500 },
  management: { limitPerMinute: 600, burst: 600 },
};

const IDLE_BUCKET_MS = 10 * 60_000;

/**
 * Per-key buckets in process memory. Scaled out, each process enforces its own share; exact
 * cross-process limits move to Redis (see ARCHITECTURE.md) without changing this interface.
 */
export class RateLimiter {
  readonly #buckets = new Map<string, Bucket>();
  #lastSweepMs = 0;

  take(keyId: string, rateClass: RateLimitClass, policy: BucketPolicy, nowMs: number): TakeResult {
    const id = `${keyId}:${rateClass}`;
    let bucket = this.#buckets.get(id);
    if (!bucket) {
      bucket = { tokens: policy.burst, updatedAtMs: nowMs };
      this.#buckets.set(id, bucket);
    }
    this.#sweep(nowMs);
    return takeToken(bucket, policy, nowMs);
  }

  #sweep(nowMs: number): void {
    if (nowMs - this.#lastSweepMs < IDLE_BUCKET_MS) return;
    this.#lastSweepMs = nowMs;
    for (const [id, bucket] of this.#buckets) {
      if (nowMs - bucket.updatedAtMs > IDLE_BUCKET_MS) this.#buckets.delete(id);
    }
  }
}

export function policyFor(
  rateClass: RateLimitClass,
  overrides: Record<string, { limit: number; burst: number }> | undefined,
): BucketPolicy {
  const override = overrides?.[rateClass];
  return override ? { limitPerMinute: override.limit, burst: override.burst } : defaultRateLimits[rateClass];
}

export interface RateVerdict {
  /** The X-RateLimit-* headers' values. */
  limit: number;
  remaining: number;
  resetAtSeconds: number;
  /** The 429 to answer, when the key has no token left. */
  refusal: AforoError | undefined;
}

/** Takes a token for the key's class (its own or its tenant's policy, else the default). */
export function admitRate(
  limiter: RateLimiter,
  auth: AuthContext,
  rateClass: RateLimitClass,
  nowMs: number,
): RateVerdict {
  const policy = policyFor(rateClass, auth.rateLimits);
  const result = limiter.take(auth.keyId, rateClass, policy, nowMs);
  return {
    limit: policy.limitPerMinute,
    remaining: result.remaining,
    resetAtSeconds: result.resetAtSeconds,
    refusal: result.allowed
      ? undefined
      : new AforoError(
          "rate-limited",
          `Rate limit of ${policy.limitPerMinute} requests per minute (burst ${policy.burst}) exceeded. Retry after ${result.retryAfterSeconds} seconds.`,
          {
            headers: { "Retry-After": String(result.retryAfterSeconds) },
            extensions: {
              retry_after: result.retryAfterSeconds,
              reset_at: new Date(result.resetAtSeconds * 1000).toISOString(),
            },
          },
        ),
  };
}
