import { AforoError, newId } from "@aforo/core";
import type { Clock } from "../../clock.ts";
import type { DatabaseHandle } from "../../db/database.ts";
import type { TenantScope } from "../../http/route-config.ts";
import type { ApiKeyService } from "../api-keys/service.ts";
import type { BillableUnit } from "../catalog/domain/billable-unit.ts";
import { eventMatchesFilters } from "../catalog/domain/filters.ts";
import type { CatalogService } from "../catalog/service.ts";
import type { CustomerService } from "../customers/service.ts";
import {
  defaultIdempotencyKey,
  type MeterEventInput,
  type NormalizedEvent,
  normalizeEvent,
} from "./domain/event-input.ts";
import { DEFAULT_BACKDATING_LIMIT_DAYS, judgeTiming } from "./domain/timing.ts";
import { unitValueOf } from "./domain/unit-value.ts";
import { type EventRow, EventWriter } from "./writer.ts";

export type EventSource = "api" | "batch" | "cloudevents" | "file" | "webhook" | "replay";

export interface AcceptedEvent {
  id: string;
  status: "ACCEPTED" | "DUPLICATE";
  flags: string[];
}

/** An item of a checked batch: what to ingest, or why it was already rejected; `payload` is kept raw. */
export interface CheckedEvent {
  payload: unknown;
  input?: MeterEventInput | undefined;
  error?: AforoError | undefined;
}

function unexplainedRejection(): AforoError {
  return new AforoError("validation-failed", "The event was rejected before ingestion.");
}

export type IngestResult = { ok: true; event: AcceptedEvent } | { ok: false; error: AforoError };

/** What enrichment adds from billing: the customer's active subscription and plan (issue 6 fills it). */
export interface EnrichmentSource {
  enrich(
    scope: TenantScope,
    customerId: string,
    unit: BillableUnit,
    quantity: string,
    occurredAt: Date,
    /** What the unit aggregates for this event (properties[field] or quantity); null for COUNT. */
    value: string | null,
    /**
     * What earlier events of the same ingest call added to each running total: they are not
     * counted yet (counters move at commit), and each event's estimate must see them.
     */
    batch?: Map<string, number>,
  ): {
    enrichment: Readonly<Record<string, unknown>>;
    estimatedRevenue: string | null;
    estimatedCost: string | null;
  };
}

/** Whether a finalised invoice already covers the instant for this customer and unit (from memory). */
export interface ClosedPeriodCheck {
  isClosed(scope: TenantScope, customerId: string, unitId: string, at: Date): boolean;
}

/** Told of every event the moment it is committed, before its sender is answered (counters). */
export type AcceptedListener = (rows: readonly EventRow[]) => void;

const noEnrichment: EnrichmentSource = {
  enrich: () => ({ enrichment: {}, estimatedRevenue: null, estimatedCost: null }),
};

/**
 * The Metering Engine: validate → resolve → deduplicate → enrich → append durably. Every lookup on
 * the way reads memory (units, customers, keys); the only I/O is the group-committed write.
 */
export class MeteringService {
  readonly #database: DatabaseHandle;
  readonly #clock: Clock;
  readonly #catalog: CatalogService;
  readonly #customers: CustomerService;
  readonly #keys: ApiKeyService;
  readonly #writer: EventWriter;
  readonly #listeners: AcceptedListener[] = [];
  enrichment: EnrichmentSource = noEnrichment;
  /** Which instants finalised invoices cover (bill runs fill it; see modules/bill-runs/closed-periods.ts). */
  closedPeriods: ClosedPeriodCheck | undefined;

  constructor(
    database: DatabaseHandle,
    clock: Clock,
    catalog: CatalogService,
    customers: CustomerService,
    keys: ApiKeyService,
  ) {
    this.#database = database;
    this.#clock = clock;
    this.#catalog = catalog;
    this.#customers = customers;
    this.#keys = keys;
    this.#writer = new EventWriter(database, {
      concurrency: database.kind === "postgres" ? 4 : 1,
      onCommitted: (rows) => {
        for (const listener of this.#listeners) listener(rows);
      },
    });
  }

  onAccepted(listener: AcceptedListener): void {
    this.#listeners.push(listener);
  }

  /** One event; a rejection is thrown as the problem the sender gets. */
  async ingestOne(scope: TenantScope, input: MeterEventInput, source: EventSource): Promise<AcceptedEvent> {
    const [result] = await this.ingest(scope, [input], source);
    if (!result) throw new Error("ingest returned no result");
    if (!result.ok) throw result.error;
    return result.event;
  }

  /** Many events; each succeeds or fails alone. */
  async ingest(
    scope: TenantScope,
    inputs: readonly MeterEventInput[],
    source: EventSource,
  ): Promise<IngestResult[]> {
    const now = this.#clock.now();
    const batch = new Map<string, number>();
    const prepared = inputs.map((input) => {
      try {
        return this.#prepare(scope, normalizeEvent(input), source, now, batch);
      } catch (error) {
        if (error instanceof AforoError) return { error };
        throw error;
      }
    });
    const rows = prepared.filter((p): p is { row: EventRow } => "row" in p).map((p) => p.row);
    const outcomes = await this.#writer.write(rows);
    let next = 0;
    return prepared.map((p) => {
      if ("error" in p) return { ok: false, error: p.error };
      const outcome = outcomes[next++];
      if (!outcome) throw new Error("writer returned fewer outcomes than rows");
      return { ok: true, event: { id: outcome.id, status: outcome.status, flags: p.row.flags } };
    });
  }

  /**
   * A batch whose items were checked first (schema, envelope, file row): each item is an input to
   * ingest or the error that already rejected it. Answers one result per item, in the order given,
   * and dead-letters every rejection with the item's raw payload.
   */
  async ingestChecked(
    scope: TenantScope,
    items: readonly CheckedEvent[],
    source: EventSource,
  ): Promise<IngestResult[]> {
    const inputs = items.flatMap((item) => (item.input ? [item.input] : []));
    const ingested = await this.ingest(scope, inputs, source);
    let next = 0;
    const results = items.map((item): IngestResult => {
      if (!item.input) return { ok: false, error: item.error ?? unexplainedRejection() };
      const result = ingested[next++];
      if (!result) throw new Error("ingest returned fewer results than inputs");
      return result;
    });
    await this.deadLetterRejected(
      scope,
      items.map((item) => item.payload),
      results,
      source,
    );
    return results;
  }

  /**
   * Keeps every rejected event of a batch, file or webhook with its reason and raw payload, so an
   * operator can fix the cause (create the customer, the unit) and replay it. A single /v1/meter call
   * is answered with its 422 and keeps nothing: its sender already knows.
   */
  async deadLetterRejected(
    scope: TenantScope,
    payloads: readonly unknown[],
    results: readonly IngestResult[],
    source: EventSource,
  ): Promise<void> {
    const now = this.#clock.now();
    const rows = results.flatMap((result, index) =>
      result.ok
        ? []
        : [
            {
              id: newId("deadLetter"),
              tenant_id: scope.tenantId,
              mode: scope.mode,
              source,
              reason_code: result.error.slug,
              reason: result.error.detail,
              payload: JSON.stringify(payloads[index] ?? null),
              status: "PENDING" as const,
              created_at: now,
            },
          ],
    );
    if (rows.length > 0) await this.#database.db.insertInto("dead_letters").values(rows).execute();
  }

  /** Waits for every event handed to the writer to be committed. */
  drain(): Promise<void> {
    return this.#writer.drain();
  }

  /**
   * Waits for the events already judged (whose writes are under way) to be committed or failed,
   * not for later ones: judging and handing over to the writer happen in one turn of the event
   * loop, so after a period is closed in memory this is the moment its counted usage is complete.
   */
  settled(): Promise<void> {
    return this.#writer.settled();
  }

  #prepare(
    scope: TenantScope,
    event: NormalizedEvent,
    source: EventSource,
    now: Date,
    batch?: Map<string, number>,
  ): { row: EventRow } {
    const unit = this.#catalog.resolveUnitCached(scope, event.metricRef);
    if (unit?.status !== "ACTIVE") {
      throw new AforoError(
        "unknown-metric",
        `No active billable unit '${event.metricRef}' exists in this tenant.`,
        {
          errors: [{ field: "metric_id", message: `unknown billable unit '${event.metricRef}'` }],
        },
      );
    }
    const customerId = this.#resolveCustomer(scope, event);
    const occurredAt = event.occurredAt ?? now;
    const closedPeriods = this.closedPeriods;
    const timing = judgeTiming(occurredAt, now, {
      backdatingLimitDays: DEFAULT_BACKDATING_LIMIT_DAYS,
      // Bill runs (issue 6): an instant a final invoice already covers is kept for reconciliation,
      // not counted, and billed as an adjustment on the next invoice (never dropped, never twice).
      periodClosed: closedPeriods && ((at) => closedPeriods.isClosed(scope, customerId, unit.id, at)),
    });
    if (timing.kind === "clock-skew") {
      throw new AforoError(
        "clock-skew",
        `The event's timestamp ${occurredAt.toISOString()} is ${Math.round(timing.aheadMs / 1000)} s ahead of the server's clock (at most 300 s allowed).`,
        { errors: [{ field: "timestamp", message: "more than 5 minutes in the future" }] },
      );
    }
    const { value, uniqueValue } = unitValueOf(unit, event.quantity, event.properties);
    const matches = eventMatchesFilters(unit.filters, event.properties);
    const flags: string[] = [];
    if (timing.kind === "late" || timing.kind === "reconciliation") flags.push("LATE");
    if (timing.kind === "reconciliation") flags.push("RECONCILIATION");
    if (!matches) flags.push("FILTERED");
    const { enrichment, estimatedRevenue, estimatedCost } = this.enrichment.enrich(
      scope,
      customerId,
      unit,
      event.quantity,
      occurredAt,
      value,
      matches && timing.kind !== "reconciliation" ? batch : undefined,
    );
    return {
      row: {
        id: newId("event"),
        tenantId: scope.tenantId,
        mode: scope.mode,
        idempotencyKey: event.idempotencyKey ?? defaultIdempotencyKey(event, customerId, occurredAt),
        customerId,
        billableUnitId: unit.id,
        metricKey: unit.key,
        eventType: event.eventType,
        quantity: event.quantity,
        value,
        uniqueValue,
        properties: event.properties,
        occurredAt,
        receivedAt: now,
        source,
        counted: matches && timing.kind !== "reconciliation",
        flags,
        enrichment:
          timing.kind === "reconciliation"
            ? { ...enrichment, reconciliation_reason: timing.reason }
            : enrichment,
        estimatedRevenue: matches ? estimatedRevenue : null,
        estimatedCost: matches ? estimatedCost : null,
      },
    };
  }

  #resolveCustomer(scope: TenantScope, event: NormalizedEvent): string {
    if (event.customerRef) {
      const customer = this.#customers.resolveCached(scope, event.customerRef);
      if (customer && customer.status !== "ARCHIVED") return customer.id;
      throw new AforoError("unknown-customer", `No customer '${event.customerRef}' exists in this tenant.`, {
        errors: [{ field: "customer_id", message: `unknown customer '${event.customerRef}'` }],
      });
    }
    const key = event.apiKey ? this.#keys.authenticate(event.apiKey) : undefined;
    const customerId =
      key && key.kind === "consumer" && key.tenantId === scope.tenantId && key.mode === scope.mode
        ? key.customerId
        : undefined;
    if (customerId) return customerId;
    throw new AforoError("unknown-customer", "The api_key does not identify a customer of this tenant.", {
      errors: [{ field: "api_key", message: "unknown, revoked or not a consumer key of this tenant" }],
    });
  }

  get database(): DatabaseHandle {
    return this.#database;
  }
}
