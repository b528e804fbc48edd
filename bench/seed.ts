/** Seeds the Aforo server through its public API, as a customer would. */
import { randomBytes } from "node:crypto";
import { BOOLEAN_FEATURE, METERED_FEATURE, type Seed } from "./targets.ts";

/** High enough never to throttle a benchmark on one machine (per minute, and burst). */
const UNTHROTTLED = { limit: 1_000_000_000, burst: 1_000_000_000 };

export const METRIC_KEY = "api_calls";

async function call(
  baseUrl: string,
  method: string,
  path: string,
  auth: { key: string; tenant?: string },
  body?: unknown,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const headers: Record<string, string> = { authorization: `Bearer ${auth.key}` };
  if (auth.tenant) headers["x-tenant-id"] = auth.tenant;
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let json: Record<string, unknown> = {};
  try {
    json = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    json = { raw: text };
  }
  return { status: response.status, json };
}

async function created(
  baseUrl: string,
  path: string,
  auth: { key: string; tenant?: string },
  body: unknown,
): Promise<Record<string, unknown>> {
  const answer = await call(baseUrl, "POST", path, auth, body);
  if (answer.status !== 201) {
    throw new Error(`seeding: POST ${path} answered ${answer.status}: ${JSON.stringify(answer.json)}`);
  }
  return answer.json;
}

function stringField(object: Record<string, unknown>, field: string): string {
  const value = object[field];
  if (typeof value !== "string")
    throw new Error(`seeding: expected a string '${field}' in ${JSON.stringify(object)}`);
  return value;
}

/**
 * A fresh tenant (so a reused database never mixes runs), a key, a COUNT unit, a customer for the
 * metering rows (subscribed to a GRADUATED plan on the unit), and a second customer subscribed to a
 * published offering for the canAccess rows.
 */
export async function seed(baseUrl: string, operatorKey: string): Promise<Seed> {
  const runId = randomBytes(6).toString("hex");
  const tenant = await created(
    baseUrl,
    "/v1/tenants",
    { key: operatorKey },
    {
      name: `Benchmark ${runId}`,
      slug: `bench-${runId}`,
    },
  );
  const tenantId = stringField(tenant, "id");
  const liveKey = stringField(tenant.api_keys as Record<string, unknown>, "live");
  const asTenant = { key: liveKey, tenant: tenantId };
  const issued = await created(baseUrl, "/v1/api_keys", asTenant, {
    mode: "live",
    name: "benchmark (unthrottled)",
    rate_limits: {
      meter: UNTHROTTLED,
      canAccess: UNTHROTTLED,
      entitlements: UNTHROTTLED,
      management: UNTHROTTLED,
    },
  });
  const key = stringField(issued, "key");
  const asBench = { key, tenant: tenantId };
  await created(baseUrl, "/v1/billable_units", asBench, {
    key: METRIC_KEY,
    name: "API calls",
    unit_label: "call",
    aggregation: "COUNT",
  });
  const customer = await created(baseUrl, "/v1/customers", asBench, {
    name: "Benchmark customer",
    email: "bench@example.com",
    currency: "USD",
  });
  await subscribeToPricedPlan(baseUrl, asBench, stringField(customer, "id"));
  const entitledCustomerId = await entitledCustomer(baseUrl, asBench);
  return {
    runId,
    tenantId,
    key,
    customerId: stringField(customer, "id"),
    metricKey: METRIC_KEY,
    entitledCustomerId,
  };
}

/**
 * A PUBLISHED offering over a rate plan (`plan`, the body of POST /v1/rate_plans) and an ACTIVE
 * subscription of `customerId` to it.
 */
async function subscribeToPlan(
  baseUrl: string,
  auth: { key: string; tenant: string },
  customerId: string,
  plan: { name: string; items: unknown[]; entitlements: unknown[] },
): Promise<void> {
  const ratePlan = await created(baseUrl, "/v1/rate_plans", auth, {
    currency: "USD",
    billing_period: { interval: "month", count: 1 },
    ...plan,
  });
  const offering = await created(baseUrl, "/v1/offerings", auth, {
    name: plan.name,
    rate_plan_ids: [stringField(ratePlan, "id")],
    billing_mode: "POSTPAID",
    trial_days: 0,
    status: "PUBLISHED",
  });
  const subscription = await created(baseUrl, "/v1/subscriptions", auth, {
    customer_id: customerId,
    offering_id: stringField(offering, "id"),
  });
  if (subscription.status !== "ACTIVE") {
    throw new Error(`seeding: the subscription is ${String(subscription.status)}, not ACTIVE`);
  }
}

/**
 * The metering rows' customer pays for `api_calls` on a GRADUATED plan, as a real customer does:
 * every event is enriched with its subscription and plan and its marginal revenue estimated
 * (a customer without a subscription would skip that work and flatter the figures).
 */
function subscribeToPricedPlan(
  baseUrl: string,
  auth: { key: string; tenant: string },
  customerId: string,
): Promise<void> {
  return subscribeToPlan(baseUrl, auth, customerId, {
    name: "Benchmark metered plan",
    items: [
      {
        model: "GRADUATED",
        billable_unit: METRIC_KEY,
        tiers: [
          { up_to: "1000", unit_price: "0.002" },
          { up_to: "1000000", unit_price: "0.001" },
          { up_to: null, unit_price: "0.0005" },
        ],
      },
    ],
    entitlements: [],
  });
}

/** The limit of the metered feature: never reached by a benchmark (overage is allowed anyway). */
export const SEARCH_LIMIT = "1000000000";

/**
 * A rate plan granting `search` (metered on the COUNT unit) and `sso` (boolean), a PUBLISHED
 * offering over it, and a customer with an ACTIVE subscription to it: what canAccess decides on.
 */
async function entitledCustomer(baseUrl: string, auth: { key: string; tenant: string }): Promise<string> {
  const customer = await created(baseUrl, "/v1/customers", auth, {
    name: "Benchmark entitled customer",
    email: "bench-entitled@example.com",
    currency: "USD",
  });
  const customerId = stringField(customer, "id");
  await subscribeToPlan(baseUrl, auth, customerId, {
    name: "Benchmark plan",
    items: [{ model: "PER_UNIT", billable_unit: METRIC_KEY, unit_price: "0.001" }],
    entitlements: [
      {
        feature: METERED_FEATURE,
        type: "metered",
        billable_unit: METRIC_KEY,
        limit: SEARCH_LIMIT,
        reset: "billing_period",
        overage: "allow",
      },
      { feature: BOOLEAN_FEATURE, type: "boolean" },
    ],
  });
  return customerId;
}

export type FeatureUsage = { kind: "used"; used: number } | { kind: "unavailable"; note: string };

/** `used` of one feature in GET /v1/entitlements?customer_id= (the counter canAccess decides on). */
export async function featureUsed(
  baseUrl: string,
  s: Seed,
  customerId: string,
  feature: string,
): Promise<FeatureUsage> {
  const query = new URLSearchParams({ customer_id: customerId });
  const answer = await call(baseUrl, "GET", `/v1/entitlements?${query}`, { key: s.key, tenant: s.tenantId });
  if (answer.status !== 200) {
    return {
      kind: "unavailable",
      note: `GET /v1/entitlements answered ${answer.status}: ${JSON.stringify(answer.json).slice(0, 300)}`,
    };
  }
  const data = Array.isArray(answer.json.data) ? (answer.json.data as Record<string, unknown>[]) : [];
  const used = data.find((entry) => entry.feature === feature)?.used;
  if (typeof used !== "number") {
    return {
      kind: "unavailable",
      note: `GET /v1/entitlements has no numeric 'used' for '${feature}': ${JSON.stringify(answer.json).slice(0, 300)}`,
    };
  }
  return { kind: "used", used };
}

/** The server's `/metrics` text (public, like /healthz). */
export async function scrapeMetrics(baseUrl: string): Promise<string> {
  const response = await fetch(`${baseUrl}/metrics`);
  const text = await response.text();
  if (!response.ok) throw new Error(`GET /metrics answered ${response.status}: ${text.slice(0, 300)}`);
  return text;
}

export type UsageCheck = { kind: "total"; total: number } | { kind: "unavailable"; note: string };

/**
 * What the server says it counted for the customer, via GET /v1/usage when that route exists.
 * COUNT counts each accepted event once, so the total is the number of events accepted.
 */
export async function usageTotal(
  baseUrl: string,
  s: Seed,
  since: Date,
  customerId: string = s.customerId,
): Promise<UsageCheck> {
  const query = new URLSearchParams({
    customer_id: customerId,
    metric_id: s.metricKey,
    from: new Date(since.getTime() - 3_600_000).toISOString(),
    to: new Date(Date.now() + 3_600_000).toISOString(),
  });
  const answer = await call(baseUrl, "GET", `/v1/usage?${query}`, { key: s.key, tenant: s.tenantId });
  if (answer.status === 404) {
    return { kind: "unavailable", note: "GET /v1/usage is not built yet (404)" };
  }
  if (answer.status !== 200) {
    return {
      kind: "unavailable",
      note: `GET /v1/usage answered ${answer.status}: ${JSON.stringify(answer.json).slice(0, 300)}`,
    };
  }
  const total = Number(answer.json.total);
  if (!Number.isFinite(total)) {
    return {
      kind: "unavailable",
      note: `GET /v1/usage has no numeric total: ${JSON.stringify(answer.json).slice(0, 300)}`,
    };
  }
  return { kind: "total", total };
}
