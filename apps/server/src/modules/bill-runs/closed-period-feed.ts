import { sql } from "kysely";
import { followChanges } from "../../db/change-feed.ts";
import type { DatabaseHandle } from "../../db/database.ts";
import type { TenantScope } from "../../http/route-config.ts";
import type { ClosedPeriods, PeriodClose } from "./closed-periods.ts";

/**
 * Periods invoiced by one process reach every other process's ClosedPeriods through this channel
 * (before it existed they learnt of them only when they restarted, and kept counting events for
 * periods already invoiced: counted, on no invoice). The notification carries the periods
 * themselves, so a bill run of 100,000 subscriptions costs the listeners no database reads.
 */
export const CLOSED_PERIODS_CHANNEL = "aforo_billed_periods";

/** PostgreSQL refuses a payload of 8,000 bytes or more; ids are ASCII, so characters are bytes. */
const PAYLOAD_BUDGET = 7_000;

/** Unit ids (about 30 characters each) per entry. */
const UNITS_PER_ENTRY = 100;

/** `[customer id, start ms, end ms, unit ids]`: short, since a bill run sends one per period. */
type WirePeriod = [string, number, number, string[]];

interface Payload {
  tenant: string;
  mode: TenantScope["mode"];
  periods: WirePeriod[];
}

/** The closes as notification payloads, each under PostgreSQL's limit. */
export function closedPeriodPayloads(scope: TenantScope, closes: readonly PeriodClose[]): string[] {
  const payloads: string[] = [];
  const head = JSON.stringify({ tenant: scope.tenantId, mode: scope.mode, periods: [] }).length;
  let periods: string[] = [];
  let size = head;
  const flush = () => {
    if (periods.length === 0) return;
    payloads.push(
      `{"tenant":${JSON.stringify(scope.tenantId)},"mode":${JSON.stringify(scope.mode)},"periods":[${periods.join(",")}]}`,
    );
    periods = [];
    size = head;
  };
  for (const { customerId, period, unitIds } of closes) {
    // A plan billing hundreds of units travels in several entries, each well under the budget.
    for (let first = 0; first === 0 || first < unitIds.length; first += UNITS_PER_ENTRY) {
      const units = unitIds.slice(first, first + UNITS_PER_ENTRY);
      const wire: WirePeriod = [customerId, period.start.getTime(), period.end.getTime(), units];
      const text = JSON.stringify(wire);
      if (size + text.length + 1 > PAYLOAD_BUDGET) flush();
      periods.push(text);
      size += text.length + 1;
    }
  }
  flush();
  return payloads;
}

/** Applies one notification; anything that is not one of ours is ignored (a listener never throws). */
export function applyClosedPeriodPayload(closedPeriods: ClosedPeriods, payload: string): void {
  let parsed: Payload;
  try {
    parsed = JSON.parse(payload) as Payload;
  } catch {
    return;
  }
  if (typeof parsed?.tenant !== "string" || (parsed.mode !== "live" && parsed.mode !== "test")) return;
  if (!Array.isArray(parsed.periods)) return;
  const scope: TenantScope = { tenantId: parsed.tenant, mode: parsed.mode };
  for (const wire of parsed.periods) {
    if (!Array.isArray(wire)) continue;
    const [customerId, startMs, endMs, unitIds] = wire;
    if (typeof customerId !== "string" || !Number.isFinite(startMs) || !Number.isFinite(endMs)) continue;
    if (!Array.isArray(unitIds) || !unitIds.every((id) => typeof id === "string")) continue;
    closedPeriods.close(scope, customerId, { start: new Date(startMs), end: new Date(endMs) }, unitIds);
  }
}

/** Sends the closes to the other processes, all in one statement (after billed_periods committed). */
export async function announceClosedPeriods(
  database: DatabaseHandle,
  scope: TenantScope,
  closes: readonly PeriodClose[],
): Promise<void> {
  if (database.kind !== "postgres" || closes.length === 0) return;
  const payloads = closedPeriodPayloads(scope, closes);
  await sql`select pg_notify(${CLOSED_PERIODS_CHANNEL}, payload) from unnest(${payloads}::text[]) as payload`.execute(
    database.db,
  );
}

/**
 * Loads the closed periods (billed_periods since `since()`) and follows the ones other processes
 * invoice; reloads everything when a lost listener connection is back. Answers the function that
 * stops listening.
 */
export function followClosedPeriods(
  database: DatabaseHandle,
  closedPeriods: ClosedPeriods,
  since: () => Date,
): Promise<() => Promise<void>> {
  return followChanges(
    database,
    CLOSED_PERIODS_CHANNEL,
    (payload) => applyClosedPeriodPayload(closedPeriods, payload),
    () => closedPeriods.load(database.db, since()),
  );
}
