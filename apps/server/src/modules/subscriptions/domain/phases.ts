import type { PinnedPlan } from "./subscription.ts";

/**
 * The plans pinned just before `at` (the phase in force then); undefined without phases. Invoicing
 * rates a period with the plans in force at its end, and a bill run closes their units to usage.
 */
export function pinnedBefore(
  phases: ReadonlyArray<{ startedAt: Date; items: PinnedPlan[] }>,
  at: Date,
): PinnedPlan[] | undefined {
  let items: PinnedPlan[] | undefined;
  for (const phase of phases) {
    if (phase.startedAt.getTime() < at.getTime()) items = phase.items;
  }
  return items;
}
