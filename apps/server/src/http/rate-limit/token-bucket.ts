/** A token bucket: `burst` tokens at most, refilled at `limitPerMinute / 60` tokens a second. */
export interface BucketPolicy {
  limitPerMinute: number;
  burst: number;
}

export interface Bucket {
  tokens: number;
  updatedAtMs: number;
}

export interface TakeResult {
  allowed: boolean;
  /** Whole tokens left after this request. */
  remaining: number;
  /** Unix time in seconds when the bucket is full again. */
  resetAtSeconds: number;
  /** Seconds until one token is available; 0 when allowed. */
  retryAfterSeconds: number;
}

export function takeToken(bucket: Bucket, policy: BucketPolicy, nowMs: number): TakeResult {
  const perMs = policy.limitPerMinute / 60_000;
  const elapsed = Math.max(0, nowMs - bucket.updatedAtMs);
  bucket.tokens = Math.min(policy.burst, bucket.tokens + elapsed * perMs);
  bucket.updatedAtMs = nowMs;
  const allowed = bucket.tokens >= 1;
  if (allowed) bucket.tokens -= 1;
  const missing = policy.burst - bucket.tokens;
  return {
    allowed,
    remaining: Math.floor(bucket.tokens),
    resetAtSeconds: Math.ceil((nowMs + missing / perMs) / 1000),
    retryAfterSeconds: allowed ? 0 : Math.max(1, Math.ceil((1 - bucket.tokens) / perMs / 1000)),
  };
}
