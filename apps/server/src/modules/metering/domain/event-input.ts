import { createHash } from "node:crypto";
import { AforoError, type FieldError, parseDecimal } from "@aforo/core";

/** An event as senders write it: the contract's names, plus the Aforo SDK's camelCase aliases. */
export interface MeterEventInput {
  customer_id?: string | undefined;
  customerId?: string | undefined;
  api_key?: string | undefined;
  metric_id?: string | undefined;
  metricName?: string | undefined;
  metricId?: string | undefined;
  quantity?: string | number | undefined;
  event_type?: string | undefined;
  eventType?: string | undefined;
  timestamp?: string | undefined;
  occurredAt?: string | undefined;
  idempotency_key?: string | undefined;
  idempotencyKey?: string | undefined;
  properties?: Record<string, unknown> | undefined;
}

/** One shape for every ingest path (REST, batch, CloudEvents, files, webhooks). */
export interface NormalizedEvent {
  customerRef: string | undefined;
  apiKey: string | undefined;
  metricRef: string;
  /** Exact decimal text; "1" when the sender left it out. */
  quantity: string;
  eventType: string | null;
  /** Undefined means "now" (decided at ingest, not here). */
  occurredAt: Date | undefined;
  idempotencyKey: string | undefined;
  properties: Record<string, unknown>;
}

const MAX_KEY_LENGTH = 255;
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

function firstString(...values: (string | undefined)[]): string | undefined {
  return values.find((value) => typeof value === "string" && value.length > 0);
}

/** Validates what the schema cannot (aliases, decimals, dates) and returns the one shape. */
export function normalizeEvent(input: MeterEventInput): NormalizedEvent {
  const errors: FieldError[] = [];
  const customerRef = firstString(input.customer_id, input.customerId);
  const apiKey = firstString(input.api_key);
  if (!customerRef && !apiKey) errors.push({ field: "customer_id", message: "is required (or api_key)" });
  const metricRef = firstString(input.metric_id, input.metricName, input.metricId);
  if (!metricRef) errors.push({ field: "metric_id", message: "is required" });

  let quantity = "1";
  if (input.quantity !== undefined) {
    try {
      const parsed = parseDecimal(input.quantity);
      if (parsed.isNegative()) errors.push({ field: "quantity", message: "must not be negative" });
      else quantity = parsed.toString();
    } catch {
      errors.push({ field: "quantity", message: "must be a decimal number" });
    }
  }

  let occurredAt: Date | undefined;
  const timestamp = firstString(input.timestamp, input.occurredAt);
  if (timestamp !== undefined) {
    occurredAt = new Date(timestamp);
    if (Number.isNaN(occurredAt.getTime()) || !RFC3339.test(timestamp)) {
      errors.push({ field: "timestamp", message: "must be an RFC 3339 date-time" });
    }
  }

  const idempotencyKey = firstString(input.idempotency_key, input.idempotencyKey);
  if (idempotencyKey && idempotencyKey.length > MAX_KEY_LENGTH) {
    errors.push({ field: "idempotency_key", message: `must be at most ${MAX_KEY_LENGTH} characters` });
  }
  const properties = input.properties ?? {};
  if (typeof properties !== "object" || properties === null || Array.isArray(properties)) {
    errors.push({ field: "properties", message: "must be an object" });
  }

  if (errors.length > 0 || !metricRef) {
    throw new AforoError(
      "validation-failed",
      `The event is invalid: ${errors.map((e) => `${e.field} ${e.message}`).join("; ")}.`,
      {
        errors,
      },
    );
  }
  return {
    customerRef,
    apiKey,
    metricRef,
    quantity,
    eventType: firstString(input.event_type, input.eventType) ?? null,
    occurredAt,
    idempotencyKey,
    properties,
  };
}

/** Deterministic JSON: object keys sorted, so the same event always hashes the same. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(",")}}`;
  }
  return JSON.stringify(value ?? null);
}

/**
 * The key of an event sent without one: a hash of everything it says, so that a sender retrying
 * the very same event (same timestamp) is deduplicated. Without a timestamp, two identical
 * events sent at different times are different events.
 */
export function defaultIdempotencyKey(event: NormalizedEvent, customerId: string, occurredAt: Date): string {
  const digest = createHash("sha256")
    .update(
      canonical({
        customer: customerId,
        metric: event.metricRef,
        quantity: event.quantity,
        type: event.eventType,
        at: occurredAt.toISOString(),
        properties: event.properties,
      }),
    )
    .digest("hex");
  return `auto_${digest.slice(0, 48)}`;
}
