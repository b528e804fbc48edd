/**
 * Every problem `type` Aforo can answer with, in one place. The HTTP layer turns an AforoError into an
 * RFC 9457 document whose `type` is `<public url>/problems/<slug>`; `/problems/<slug>` serves the page
 * written from `description`. Slugs are part of the API contract: never rename one, add a new one.
 */
export interface ProblemDefinition {
  readonly status: number;
  readonly title: string;
  readonly description: string;
}

export const problemCatalogue = {
  "malformed-request": {
    status: 400,
    title: "Malformed Request",
    description: "The body is not valid JSON (or not the declared content type). Fix the encoding and retry.",
  },
  "validation-failed": {
    status: 400,
    title: "Validation Failed",
    description:
      "The request breaks the schema: a missing field, a wrong type or an unknown enum value. `errors` lists each field with its message.",
  },
  "missing-tenant": {
    status: 400,
    title: "Missing Tenant",
    description: "Tenant-scoped calls need the `X-Tenant-Id` header with the tenant's id or slug.",
  },
  unauthorized: {
    status: 401,
    title: "Unauthorized",
    description:
      "The `Authorization: Bearer <key>` header is missing or malformed, or the key is unknown, revoked, expired, or does not belong to the tenant named in `X-Tenant-Id`.",
  },
  forbidden: {
    status: 403,
    title: "Forbidden",
    description:
      "The key is valid but lacks the scope this operation needs, or its mode (live/test) does not allow it.",
  },
  "not-found": {
    status: 404,
    title: "Not Found",
    description:
      "No such resource in this tenant and mode. Resources of another tenant, or of the other mode, also answer 404.",
  },
  "method-not-allowed": {
    status: 405,
    title: "Method Not Allowed",
    description: "The path exists but not with this method.",
  },
  conflict: {
    status: 409,
    title: "Conflict",
    description: "The request conflicts with the current state of the resource (a duplicate key or name).",
  },
  "invalid-transition": {
    status: 409,
    title: "Invalid State Transition",
    description: "The resource cannot move from its current state to the requested one. `detail` names both.",
  },
  "resource-in-use": {
    status: 409,
    title: "Resource In Use",
    description:
      "The resource is referenced elsewhere (for example a billable unit used by a rate plan or by events), so this change is refused.",
  },
  "idempotency-key-reused": {
    status: 409,
    title: "Idempotency Key Reused",
    description:
      "This `Idempotency-Key` was already used with a different request body in the last 24 hours. Use a new key for a new request.",
  },
  "idempotency-request-in-progress": {
    status: 409,
    title: "Idempotent Request In Progress",
    description:
      "A request with this `Idempotency-Key` is still being processed. Retry shortly. (A request that never answered, because its server stopped, holds its key until the key expires after 24 hours.)",
  },
  "payload-too-large": {
    status: 413,
    title: "Payload Too Large",
    description: "The body exceeds the route's limit (1 MiB for JSON routes).",
  },
  "unsupported-media-type": {
    status: 415,
    title: "Unsupported Media Type",
    description: "Send `Content-Type: application/json` (or the type the route documents).",
  },
  "unprocessable-entity": {
    status: 422,
    title: "Unprocessable Entity",
    description:
      "The request is well formed but breaks a business rule. `errors` lists each field with its message.",
  },
  "unknown-metric": {
    status: 422,
    title: "Unknown Metric",
    description: "The event names a billable unit (`metric_id`) that does not exist in this tenant and mode.",
  },
  "unknown-customer": {
    status: 422,
    title: "Unknown Customer",
    description:
      "The event names a customer (by id, external id or consumer key) that does not exist in this tenant and mode.",
  },
  "unknown-currency": {
    status: 422,
    title: "Unknown Currency",
    description: "The currency is not an ISO 4217 code Aforo knows.",
  },
  "clock-skew": {
    status: 422,
    title: "Clock Skew",
    description: "The event's timestamp lies more than 5 minutes in the future. Check the sender's clock.",
  },
  "insufficient-funds": {
    status: 422,
    title: "Insufficient Funds",
    description: "The wallet's spendable balance cannot cover the debit.",
  },
  "feature-not-entitled": {
    status: 403,
    title: "Feature Not In Plan",
    description:
      'The customer\'s plan does not include this feature. The document carries `allowed: false`, `decision: "block"` and `reason`.',
  },
  "subscription-inactive": {
    status: 403,
    title: "Subscription Not Active",
    description:
      "The customer has no active (or trialing, past-due, expiring) subscription, so nothing is entitled.",
  },
  "key-revoked": {
    status: 403,
    title: "Key Revoked",
    description:
      "The consumer key (ak_…) presented at the gateway is unknown, revoked or expired (keys are revoked when their subscription ends).",
  },
  "wallet-empty": {
    status: 403,
    title: "Prepaid Balance Exhausted",
    description:
      "The customer's prepaid wallet is empty and the offering's escrow says BLOCK. Top up the wallet to continue.",
  },
  "feature-rate-limited": {
    status: 429,
    title: "Rate Limit Exceeded",
    description:
      "The customer exceeded the rate limit of this feature. `reset_at` says when a request is allowed again.",
  },
  "quota-exceeded": {
    status: 429,
    title: "Quota Exceeded",
    description:
      "The customer has used the quota of this feature for the current period. `reset_at` says when it renews.",
  },
  "rate-limited": {
    status: 429,
    title: "Too Many Requests",
    description:
      "The key exceeded its request rate. Wait `Retry-After` seconds; the `X-RateLimit-*` headers show the budget.",
  },
  "internal-error": {
    status: 500,
    title: "Internal Server Error",
    description:
      "An unexpected failure on our side. Nothing was changed if the operation was transactional. Report the `instance` (request id).",
  },
  "service-unavailable": {
    status: 503,
    title: "Service Unavailable",
    description:
      "A dependency (the database) is not reachable, or the server is shutting down. Retry with backoff.",
  },
  "malformed-row": {
    status: 400,
    title: "Malformed Row",
    description:
      "A row of an imported file could not be read: an NDJSON line that is not a JSON object, or a CSV record with broken quoting or another number of fields than the header. The row is reported with its line number and kept as a dead letter.",
  },
  "malformed-file": {
    status: 400,
    title: "Malformed File",
    description:
      "An imported file could not be read at all (not UTF-8 text, or a CSV without a usable header row), so its import job failed without processing a row.",
  },
  "payment-failed": {
    status: 402,
    title: "Payment Failed",
    description:
      "The payment provider refused the charge (a declined card, a payment method that needs the customer to authenticate, an unusable method). The failed payment is recorded: `payment_id`, `failure_code` and `failure_message` name it. The invoice stays unpaid.",
  },
  "payment-in-progress": {
    status: 409,
    title: "Payment In Progress",
    description:
      "A charge for this invoice (or top-up) is already with the payment provider. Wait for its outcome (GET /v1/payments?invoice_id=…) instead of charging again.",
  },
  "payment-provider-error": {
    status: 502,
    title: "Payment Provider Error",
    description:
      "The payment provider could not be reached or answered with an error of its own, so the outcome of the charge is not known yet. The payment stays PENDING and is resolved in the background with the same idempotency key: it is never charged twice.",
  },
} as const satisfies Record<string, ProblemDefinition>;

export type ProblemSlug = keyof typeof problemCatalogue;

export function isProblemSlug(value: string): value is ProblemSlug {
  return Object.hasOwn(problemCatalogue, value);
}
