import { describe, expect, it } from "vitest";
import { hasIdPrefix, newId, pooledRandom } from "./index.ts";

describe("ids", () => {
  it("makes prefixed ids that are unique and sort in the order they were made", () => {
    const ids = Array.from({ length: 20_000 }, () => newId("event"));
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
    expect(ids.every((id) => hasIdPrefix("event", id) && /^evt_[0-9a-z]{26}$/.test(id))).toBe(true);
  });

  it("draws random characters uniformly from the pooled cryptographic bytes", () => {
    const buckets = new Array<number>(32).fill(0);
    const draws = 320_000;
    let outOfRange = 0;
    for (let i = 0; i < draws; i++) {
      const fraction = pooledRandom();
      if (!(fraction >= 0 && fraction < 1)) outOfRange += 1;
      const bucket = Math.floor(fraction * 32);
      buckets[bucket] = (buckets[bucket] ?? 0) + 1;
    }
    expect(outOfRange).toBe(0);
    // 10,000 expected per character; a fair source stays within ±5 % (over 15 standard deviations).
    for (const count of buckets) expect(Math.abs(count - 10_000)).toBeLessThan(500);
  });
});
