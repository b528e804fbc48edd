import { describe, expect, it } from "vitest";
import {
  checkLifecycleTransition,
  checkPublishTransition,
  type Lifecycle,
  lifecycles,
  type PublishStatus,
  publishStatuses,
} from "./product.ts";

const allowedLifecycle: [Lifecycle, Lifecycle][] = [
  ["EXPERIMENTAL", "BETA"],
  ["EXPERIMENTAL", "GA"],
  ["EXPERIMENTAL", "RETIRED"],
  ["BETA", "GA"],
  ["BETA", "DEPRECATED"],
  ["GA", "DEPRECATED"],
  ["DEPRECATED", "GA"],
  ["DEPRECATED", "RETIRED"],
];

const allowedPublish: [PublishStatus, PublishStatus][] = [
  ["DRAFT", "IN_REVIEW"],
  ["DRAFT", "PUBLISHED"],
  ["DRAFT", "ARCHIVED"],
  ["IN_REVIEW", "DRAFT"],
  ["IN_REVIEW", "PUBLISHED"],
  ["IN_REVIEW", "ARCHIVED"],
  ["PUBLISHED", "ARCHIVED"],
  ["PUBLISHED", "DRAFT"],
  ["ARCHIVED", "DRAFT"],
];

function isListed<T>(pairs: [T, T][], from: T, to: T): boolean {
  return pairs.some(([a, b]) => a === from && b === to);
}

describe("product lifecycle transitions", () => {
  for (const from of lifecycles) {
    for (const to of lifecycles) {
      const allowed = from === to || isListed(allowedLifecycle, from, to);
      it(`${allowed ? "allows" : "refuses"} ${from} → ${to}`, () => {
        const refusal = checkLifecycleTransition(from, to);
        if (allowed) {
          expect(refusal).toBeUndefined();
        } else {
          expect(refusal?.field).toBe("lifecycle");
          expect(refusal?.detail).toContain(from);
          expect(refusal?.detail).toContain(to);
        }
      });
    }
  }

  it("tells the caller to deprecate first when retiring a GA product", () => {
    expect(checkLifecycleTransition("GA", "RETIRED")?.detail).toMatch(/deprecate it first/i);
  });

  it("calls RETIRED terminal", () => {
    expect(checkLifecycleTransition("RETIRED", "GA")?.detail).toMatch(/terminal/);
  });
});

describe("product publish status transitions", () => {
  for (const from of publishStatuses) {
    for (const to of publishStatuses) {
      const allowed = from === to || isListed(allowedPublish, from, to);
      it(`${allowed ? "allows" : "refuses"} ${from} → ${to}`, () => {
        const refusal = checkPublishTransition(from, to);
        if (allowed) {
          expect(refusal).toBeUndefined();
        } else {
          expect(refusal?.field).toBe("status");
          expect(refusal?.detail).toContain(from);
          expect(refusal?.detail).toContain(to);
        }
      });
    }
  }
});
