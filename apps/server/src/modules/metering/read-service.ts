import { AforoError } from "@aforo/core";
import type { Clock } from "../../clock.ts";
import type { DatabaseHandle } from "../../db/database.ts";
import type { Page, PageRequest } from "../../db/pagination.ts";
import type { TenantScope } from "../../http/route-config.ts";
import type { BillableUnit } from "../catalog/domain/billable-unit.ts";
import type { CatalogService } from "../catalog/service.ts";
import {
  assertWindowCount,
  averageOf,
  canonicalDecimal,
  canUseRollups,
  clipWindow,
  type UsageRange,
  type UsageWindow,
  windowsOf,
} from "./domain/usage-query.ts";
import type { AcceptedEvent, IngestResult } from "./service.ts";
import * as deadLetters from "./store/dead-letters.ts";
import * as events from "./store/events.ts";
import * as usage from "./store/usage.ts";

export interface UsageQueryInput {
  /** A billable unit id or key. */
  metricRef: string;
  /** A resolved customer id; absent = every customer, one row each. */
  customerId?: string | undefined;
  range: UsageRange;
  window: UsageWindow | null;
  groupBy: readonly string[];
}

export interface UsageRow {
  customerId: string;
  window: { start: Date; end: Date };
  /** Present when the query grouped by properties: path → value (null when absent). */
  group?: Record<string, unknown>;
  value: string;
}

export interface UsageAnswer {
  unit: BillableUnit;
  rows: UsageRow[];
  total: string;
  /** Which store answered (reported in a response header, and asserted by tests). */
  source: "rollups" | "events";
}

export interface ReplayOutcome {
  deadLetter: deadLetters.StoredDeadLetter;
  event: AcceptedEvent;
}

/**
 * The read side of metering: event listings with provenance, usage aggregation, and the dead
 * letter queue with replay. The write side (MeteringService) stays the only writer of events.
 */
export class MeteringReadService {
  readonly #database: DatabaseHandle;
  readonly #clock: Clock;
  readonly #catalog: CatalogService;

  constructor(database: DatabaseHandle, clock: Clock, catalog: CatalogService) {
    this.#database = database;
    this.#clock = clock;
    this.#catalog = catalog;
  }

  /** A unit by id or key, archived ones included: their history can still be read. */
  resolveUnit(scope: TenantScope, ref: string): BillableUnit | undefined {
    return this.#catalog.resolveUnitCached(scope, ref);
  }

  listEvents(
    scope: TenantScope,
    filter: events.EventFilter,
    page: PageRequest,
  ): Promise<Page<events.StoredEvent>> {
    return events.listEvents(this.#database.db, scope, filter, page);
  }

  async getEvent(scope: TenantScope, id: string): Promise<events.StoredEvent> {
    const event = await events.findEvent(this.#database.db, scope, id);
    if (!event) throw new AforoError("not-found", `No event '${id}' exists in this tenant.`);
    return event;
  }

  /** Every billable unit of the tenant, archived ones included (their history can be read). */
  async allUnits(scope: TenantScope): Promise<BillableUnit[]> {
    const all: BillableUnit[] = [];
    let startingAfter: string | undefined;
    for (;;) {
      const page = await this.#catalog.listBillableUnits(scope, {}, { limit: 100, startingAfter });
      all.push(...page.data);
      const last = page.data.at(-1);
      if (!page.has_more || !last) return all;
      startingAfter = last.id;
    }
  }

  async usage(scope: TenantScope, input: UsageQueryInput): Promise<UsageAnswer> {
    const unit = this.resolveUnit(scope, input.metricRef);
    if (!unit) {
      throw new AforoError("unknown-metric", `No billable unit '${input.metricRef}' exists in this tenant.`, {
        errors: [{ field: "metric_id", message: `unknown billable unit '${input.metricRef}'` }],
      });
    }
    assertWindowCount(input.range, input.window);
    const selection: usage.UsageSelection = {
      billableUnitId: unit.id,
      aggregation: unit.aggregation,
      customerId: input.customerId,
      range: input.range,
    };
    const useRollups = canUseRollups(unit.aggregation, input.groupBy, input.range);
    const aggregate = useRollups ? usage.aggregateRollups : usage.aggregateEvents;
    const db = this.#database.db;
    const source = useRollups ? "rollups" : "events";
    if (input.customerId !== undefined && input.window === null && input.groupBy.length === 0) {
      // One customer, one window spanning the range (what invoicing asks for every period): the
      // customer's single row is the total, so one aggregate answers both.
      const [single] = await aggregate(db, scope, selection, {
        byCustomer: false,
        window: null,
        groupBy: [],
      });
      const total = rowValue(single);
      return {
        unit,
        rows: [
          {
            customerId: input.customerId,
            window: clipWindow(input.range.from, null, input.range),
            value: total,
          },
        ],
        total,
        source,
      };
    }
    const [rows, totals] = await Promise.all([
      aggregate(db, scope, selection, { byCustomer: true, window: input.window, groupBy: input.groupBy }),
      aggregate(db, scope, selection, { byCustomer: false, window: null, groupBy: [] }),
    ]);
    const answerRows = rows
      .filter((row) => row.customerId !== null)
      .map((row) => this.#toUsageRow(row, input));
    const dense =
      input.customerId !== undefined && input.groupBy.length === 0
        ? fillWindows(answerRows, input.customerId, input.range, input.window)
        : answerRows;
    return {
      unit,
      rows: dense.sort(compareRows),
      total: rowValue(totals[0]),
      source,
    };
  }

  /**
   * One unit's usage over one range for each of `customerIds`, in one grouped query (bill runs read
   * a chunk of customers at once): each total is what `usage` answers for that customer alone,
   * "0" for a customer without usage.
   */
  async usageOfCustomers(
    scope: TenantScope,
    input: { metricRef: string; customerIds: readonly string[]; range: UsageRange },
  ): Promise<{ unit: BillableUnit; totals: Map<string, string> }> {
    const unit = this.resolveUnit(scope, input.metricRef);
    if (!unit) {
      throw new AforoError("unknown-metric", `No billable unit '${input.metricRef}' exists in this tenant.`, {
        errors: [{ field: "metric_id", message: `unknown billable unit '${input.metricRef}'` }],
      });
    }
    const totals = new Map<string, string>();
    if (input.customerIds.length === 0) return { unit, totals };
    const selection: usage.UsageSelection = {
      billableUnitId: unit.id,
      aggregation: unit.aggregation,
      customerIds: input.customerIds,
      range: input.range,
    };
    const aggregate = canUseRollups(unit.aggregation, [], input.range)
      ? usage.aggregateRollups
      : usage.aggregateEvents;
    const rows = await aggregate(this.#database.db, scope, selection, {
      byCustomer: true,
      window: null,
      groupBy: [],
    });
    for (const row of rows) if (row.customerId !== null) totals.set(row.customerId, rowValue(row));
    for (const customerId of input.customerIds) if (!totals.has(customerId)) totals.set(customerId, "0");
    return { unit, totals };
  }

  #toUsageRow(row: usage.AggregateRow, input: UsageQueryInput): UsageRow {
    const bucket = row.bucket ?? input.range.from;
    const window = clipWindow(bucket, input.window, input.range);
    return {
      customerId: row.customerId ?? "",
      window,
      ...(input.groupBy.length > 0
        ? { group: Object.fromEntries(input.groupBy.map((path, index) => [path, row.groups[index] ?? null])) }
        : {}),
      value: rowValue(row),
    };
  }

  listDeadLetters(
    scope: TenantScope,
    filter: deadLetters.DeadLetterFilter,
    page: PageRequest,
  ): Promise<Page<deadLetters.StoredDeadLetter>> {
    return deadLetters.listDeadLetters(this.#database.db, scope, filter, page);
  }

  async getDeadLetter(scope: TenantScope, id: string): Promise<deadLetters.StoredDeadLetter> {
    const letter = await deadLetters.findDeadLetter(this.#database.db, scope, id);
    if (!letter) throw new AforoError("not-found", `No dead letter '${id}' exists in this tenant.`);
    return letter;
  }

  /**
   * Re-ingests a dead letter's payload through `ingest` (the write side). The letter is claimed
   * first (PENDING → REPLAYED in one conditional update) so that concurrent replays cannot ingest
   * it twice; a new rejection puts it back to PENDING with the new reason and is thrown as 422.
   */
  async replayDeadLetter(
    scope: TenantScope,
    id: string,
    ingest: (letter: deadLetters.StoredDeadLetter) => Promise<IngestResult>,
  ): Promise<ReplayOutcome> {
    const db = this.#database.db;
    const letter = await this.getDeadLetter(scope, id);
    const claimed =
      letter.status === "PENDING"
        ? await deadLetters.claimDeadLetter(db, scope, id, this.#clock.now())
        : undefined;
    if (!claimed) {
      throw new AforoError(
        "invalid-transition",
        `The dead letter '${id}' is already REPLAYED; only a PENDING one can be replayed.`,
      );
    }
    let result: IngestResult;
    try {
      result = await ingest(letter);
    } catch (error) {
      await deadLetters.releaseDeadLetter(db, scope, id);
      throw error;
    }
    if (!result.ok) {
      const rejection = result.error;
      await deadLetters.releaseDeadLetter(db, scope, id, { code: rejection.slug, text: rejection.detail });
      throw asUnprocessable(rejection);
    }
    const replayed = await deadLetters.recordReplayedEvent(db, scope, id, result.event.id);
    return { deadLetter: replayed, event: result.event };
  }
}

/** A replayed payload's own schema problem is not the replay request's fault: 422, not 400. */
function asUnprocessable(error: AforoError): AforoError {
  if (error.status === 422) return error;
  return new AforoError(
    "unprocessable-entity",
    `The stored payload is still rejected (${error.slug}): ${error.detail}`,
    {
      ...(error.errors ? { errors: error.errors } : {}),
    },
  );
}

function rowValue(row: usage.AggregateRow | undefined): string {
  if (!row) return "0";
  if (row.sum !== null || row.count !== null) return averageOf(row.sum ?? "0", row.count ?? "0");
  return canonicalDecimal(row.value);
}

/** One customer without group_by: every window of the range appears, "0" where nothing counted. */
function fillWindows(
  rows: UsageRow[],
  customerId: string,
  range: UsageRange,
  window: UsageWindow | null,
): UsageRow[] {
  const byStart = new Map(rows.map((row) => [row.window.start.getTime(), row]));
  return windowsOf(range, window).map(
    (span) => byStart.get(span.start.getTime()) ?? { customerId, window: span, value: "0" },
  );
}

function compareRows(a: UsageRow, b: UsageRow): number {
  const byTime = a.window.start.getTime() - b.window.start.getTime();
  if (byTime !== 0) return byTime;
  if (a.customerId !== b.customerId) return a.customerId < b.customerId ? -1 : 1;
  const groupA = JSON.stringify(a.group ?? null);
  const groupB = JSON.stringify(b.group ?? null);
  return groupA < groupB ? -1 : groupA > groupB ? 1 : 0;
}
