import { AforoError } from "@aforo/core";
import type { Mode } from "../../db/schema.ts";
import { WEBHOOK_EVENT_TYPES, type WebhookEventType } from "./publisher.ts";

/** An endpoint subscribed to "*" receives every event type, including ones added later. */
export const ALL_EVENTS = "*";

export type DeliveryStatus = "pending" | "succeeded" | "failed";
export const deliveryStatuses: readonly DeliveryStatus[] = ["pending", "succeeded", "failed"];

export type AttemptTrigger = "automatic" | "replay";

export interface WebhookEndpoint {
  id: string;
  tenantId: string;
  mode: Mode;
  url: string;
  description: string | null;
  events: string[];
  enabled: boolean;
  secretSealed: string;
  previousSecretSealed: string | null;
  previousSecretExpiresAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface WebhookDelivery {
  id: string;
  tenantId: string;
  mode: Mode;
  endpointId: string;
  eventId: string;
  eventType: string;
  status: DeliveryStatus;
  attemptCount: number;
  automaticAttemptCount: number;
  nextAttemptAt: Date | null;
  lockedUntil: Date | null;
  lastAttemptAt: Date | null;
  lastStatusCode: number | null;
  lastError: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface WebhookAttempt {
  id: string;
  deliveryId: string;
  trigger: AttemptTrigger;
  succeeded: boolean;
  statusCode: number | null;
  responseBody: string | null;
  durationMs: number;
  error: string | null;
  attemptedAt: Date;
}

/** What one HTTP attempt gave: a status code, or an error before any answer (DNS, refused, timeout). */
export interface AttemptOutcome {
  statusCode: number | null;
  responseBody: string | null;
  durationMs: number;
  error: string | null;
}

/** How long a rotated-out secret keeps signing beside the new one, so receivers can roll over. */
export const PREVIOUS_SECRET_OVERLAP_MS = 24 * 3_600_000;

/** The response body kept in the delivery log, at most this many characters. */
export const RESPONSE_EXCERPT_LENGTH = 1_000;

const MAX_URL_LENGTH = 2_048;

function unprocessable(field: string, detail: string, message: string): AforoError {
  return new AforoError("unprocessable-entity", detail, { errors: [{ field, message }] });
}

/** An absolute http(s) URL without credentials; anything else is a 422 on `url`. */
export function checkEndpointUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw unprocessable("url", `'${raw}' is not an absolute URL.`, "must be an absolute http or https URL");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw unprocessable(
      "url",
      `Webhook endpoints must use http or https, not '${url.protocol.replace(/:$/, "")}'.`,
      "must be an http or https URL",
    );
  }
  if (url.username || url.password) {
    throw unprocessable(
      "url",
      "A webhook URL must not carry credentials; verify the signature instead.",
      "must not contain a user name or password",
    );
  }
  if (raw.length > MAX_URL_LENGTH) {
    throw unprocessable("url", `The URL is longer than ${MAX_URL_LENGTH} characters.`, "is too long");
  }
  return raw;
}

/** The subscribed event types, deduplicated in the order given; "*" stands alone. */
export function checkEventFilter(events: readonly string[]): string[] {
  const unique = [...new Set(events)];
  const unknown = unique.filter(
    (type) => type !== ALL_EVENTS && !(WEBHOOK_EVENT_TYPES as readonly string[]).includes(type),
  );
  if (unknown.length > 0) {
    throw new AforoError("unprocessable-entity", `Unknown event type(s): ${unknown.join(", ")}.`, {
      errors: unknown.map((type) => ({ field: "events", message: `'${type}' is not a known event type` })),
    });
  }
  if (unique.length === 0) {
    throw unprocessable("events", "Subscribe to at least one event type (or '*').", "must not be empty");
  }
  return unique.includes(ALL_EVENTS) ? [ALL_EVENTS] : unique;
}

export function subscribes(endpoint: Pick<WebhookEndpoint, "events" | "enabled">, type: WebhookEventType) {
  return endpoint.enabled && (endpoint.events.includes(ALL_EVENTS) || endpoint.events.includes(type));
}

export function isSuccess(outcome: Pick<AttemptOutcome, "statusCode">): boolean {
  return outcome.statusCode !== null && outcome.statusCode >= 200 && outcome.statusCode < 300;
}

/** The delivery's fields after an attempt (the caller writes them with the attempt). */
export interface DeliveryChange {
  status: DeliveryStatus;
  attemptCount: number;
  automaticAttemptCount: number;
  nextAttemptAt: Date | null;
  lastAttemptAt: Date;
  lastStatusCode: number | null;
  lastError: string | null;
}

/**
 * The state after an attempt. An automatic attempt that fails waits `retryScheduleMs[n - 1]` after
 * the n-th automatic attempt and fails the delivery once the schedule is used up. A replay does not
 * use up the schedule: if it fails while retries are still scheduled they go on; on a delivery
 * that had already succeeded or failed, the replay's result becomes the status.
 */
export function afterAttempt(
  delivery: Pick<WebhookDelivery, "status" | "attemptCount" | "automaticAttemptCount" | "nextAttemptAt">,
  outcome: AttemptOutcome,
  trigger: AttemptTrigger,
  retryScheduleMs: readonly number[],
  now: Date,
): DeliveryChange {
  const succeeded = isSuccess(outcome);
  const base = {
    attemptCount: delivery.attemptCount + 1,
    lastAttemptAt: now,
    lastStatusCode: outcome.statusCode,
    lastError: succeeded ? null : describeFailure(outcome),
  };
  if (succeeded) {
    return {
      ...base,
      status: "succeeded",
      automaticAttemptCount: delivery.automaticAttemptCount + (trigger === "automatic" ? 1 : 0),
      nextAttemptAt: null,
    };
  }
  if (trigger === "replay") {
    return {
      ...base,
      status: delivery.status === "pending" ? "pending" : "failed",
      automaticAttemptCount: delivery.automaticAttemptCount,
      nextAttemptAt: delivery.status === "pending" ? delivery.nextAttemptAt : null,
    };
  }
  const automaticAttemptCount = delivery.automaticAttemptCount + 1;
  const wait = retryScheduleMs[automaticAttemptCount - 1];
  if (wait === undefined) return { ...base, status: "failed", automaticAttemptCount, nextAttemptAt: null };
  return {
    ...base,
    status: "pending",
    automaticAttemptCount,
    nextAttemptAt: new Date(now.getTime() + wait),
  };
}

function describeFailure(outcome: AttemptOutcome): string {
  if (outcome.error) return outcome.error;
  return `the endpoint answered ${outcome.statusCode ?? "nothing"}`;
}

/** The first characters of a response body, for the delivery log. */
export function excerpt(body: string): string {
  return body.length <= RESPONSE_EXCERPT_LENGTH ? body : `${body.slice(0, RESPONSE_EXCERPT_LENGTH)}…`;
}

/**
 * The body every endpoint receives (Standard Webhooks: `{type, timestamp, data}`). Money in the
 * data is already integer minor units; a stray bigint is written as a number when exact, else as
 * a string, so serialisation never throws inside the caller's transaction.
 */
export function payloadOf(type: WebhookEventType, at: Date, data: Record<string, unknown>): string {
  return JSON.stringify({ type, timestamp: at.toISOString(), data }, (_key, value: unknown) => {
    if (typeof value !== "bigint") return value;
    const number = Number(value);
    return Number.isSafeInteger(number) ? number : value.toString();
  });
}

/** Threshold percentages of a metered limit that usage.threshold_reached announces. */
export const USAGE_THRESHOLDS_PERCENT = [80, 100] as const;

/** The thresholds `used` has reached of `limit` (none for a zero or negative limit). */
export function reachedThresholds(used: number, limit: number): number[] {
  if (!(limit > 0)) return [];
  return USAGE_THRESHOLDS_PERCENT.filter((percent) => used * 100 >= limit * percent);
}
