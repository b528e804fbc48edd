import { describe, expect, it } from "vitest";
import { takeToken } from "./token-bucket.ts";

describe("token bucket", () => {
  const policy = { limitPerMinute: 60, burst: 3 };

  it("allows a burst, then refuses until a token refills", () => {
    const bucket = { tokens: 3, updatedAtMs: 0 };
    expect([1, 2, 3].map(() => takeToken(bucket, policy, 0).allowed)).toEqual([true, true, true]);
    const refused = takeToken(bucket, policy, 0);
    expect(refused).toMatchObject({ allowed: false, remaining: 0, retryAfterSeconds: 1 });
    expect(takeToken(bucket, policy, 1_000).allowed).toBe(true);
  });

  it("reports when the bucket is full again as a Unix time in seconds", () => {
    const bucket = { tokens: 3, updatedAtMs: 1_000_000 };
    const result = takeToken(bucket, policy, 1_000_000);
    expect(result.remaining).toBe(2);
    expect(result.resetAtSeconds).toBe(1_001);
  });

  it("never holds more than the burst after a long idle time", () => {
    const bucket = { tokens: 0, updatedAtMs: 0 };
    expect(takeToken(bucket, policy, 3_600_000).remaining).toBe(2);
  });
});
