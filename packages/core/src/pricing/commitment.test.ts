import { describe, expect, it } from "vitest";
import { applyCommitment, applyMaximumSpend } from "./commitment.ts";

describe("applyCommitment", () => {
  it("returns the true-up that lifts the total to the minimum commitment", () => {
    expect(applyCommitment(7500n, 10000n)).toBe(2500n);
  });

  it("returns zero when the total meets or exceeds the commitment", () => {
    expect(applyCommitment(10000n, 10000n)).toBe(0n);
    expect(applyCommitment(12000n, 10000n)).toBe(0n);
  });

  it("rejects negative inputs", () => {
    expect(() => applyCommitment(-1n, 0n)).toThrow(RangeError);
  });
});

describe("applyMaximumSpend", () => {
  it("returns the negative adjustment that brings the total down to the maximum", () => {
    expect(applyMaximumSpend(12000n, 10000n)).toBe(-2000n);
  });

  it("returns zero when the total is within the maximum", () => {
    expect(applyMaximumSpend(10000n, 10000n)).toBe(0n);
    expect(applyMaximumSpend(0n, 10000n)).toBe(0n);
  });

  it("rejects negative inputs", () => {
    expect(() => applyMaximumSpend(1n, -1n)).toThrow(RangeError);
  });
});
