/**
 * The rows of the benchmark table. Adding a row is adding one entry to `targets`: say which server,
 * which route, how to build each request's body from the seeded tenant, and what to compare with.
 */

/** What seeding through the API produced; request builders read it. */
export interface Seed {
  /** Unique per run, so idempotency keys never collide with an earlier run on the same database. */
  runId: string;
  tenantId: string;
  /** A live secret key with very high rate limits (the defaults would throttle the load). */
  key: string;
  customerId: string;
  /** The COUNT billable unit's key. */
  metricKey: string;
  /**
   * A second customer, subscribed to a published offering whose plan grants `search` (metered on
   * the COUNT unit, a huge limit, overage allowed) and `sso` (boolean): the canAccess rows ask about
   * it. Kept apart from `customerId` so that the metering rows' events never move its `search`
   * usage, and its consumed usage (recorded as api_calls events) never enters the metering check.
   */
  entitledCustomerId: string;
}

export interface Target {
  /** The row name in the table and the key in `--json`. */
  name: string;
  server: "bare" | "aforo";
  method: "GET" | "POST";
  path: string;
  /** Default: SATURATED_CONNECTIONS, no rate limit (saturated throughput). */
  connections?: number;
  /** Requests per second over all connections: a latency row at a fixed load. */
  overallRate?: number;
  /** The row whose request throughput is the denominator of ratio_to_bare. */
  baseline?: string;
  /** Send the tenant key and X-Tenant-Id. */
  authenticated?: boolean;
  /** Builds a fresh body for every request (unique idempotency keys); JSON is assumed. */
  body?: (seed: Seed, row: string) => () => string;
  /** Metering rows: events in one request (events_per_s = rps × this) and per-event statuses counted. */
  eventsPerRequest?: number;
  /** canAccess rows: count the answers' `allowed` (every one must be allowed:true). */
  decisions?: boolean;
  /** canAccess rows with `consume: true`: the server-side usage must grow by the allowed checks. */
  consumes?: boolean;
}

export const SATURATED_CONNECTIONS = 10;
export const LATENCY_CONNECTIONS = 4;
/** Connections of the meter_single_64c row: single events from many gateways at once. */
export const METER_FLEET_CONNECTIONS = 64;
/** Fixed load of the single-event latency row: within what the embedded database sustains. */
export const METER_LATENCY_RATE = 500;
/**
 * Fixed load of the batch latency row: 60 requests of 1,000 events a second, the PostgreSQL goal's
 * 60,000 events/s, so its p99 is the goal's "p99 <= 100 ms per request" at the goal's rate. (The
 * saturated row's p99 is a closed loop's: four clients each waiting for the others' commits.)
 */
export const METER_BATCH_LATENCY_RATE = 60;
/** Fixed load of the canAccess latency row (the goal names 2,000 req/s with at most 4 connections). */
export const CAN_ACCESS_LATENCY_RATE = 2000;
/** The features the seeded plan grants: `search` is metered, `sso` boolean. */
export const METERED_FEATURE = "search";
export const BOOLEAN_FEATURE = "sso";

/** Unique idempotency keys: `<run>.<row>.<n>`; one counter per row and run. */
function keys(seed: Seed, row: string): () => string {
  let next = 0;
  return () => `${seed.runId}.${row}.${next++}`;
}

/** One event as sent to POST /v1/meter: the smallest valid body (timestamp defaults to now). */
export function singleEvent(seed: Seed, row: string): () => string {
  const nextKey = keys(seed, row);
  const head = `{"customer_id":${JSON.stringify(seed.customerId)},"metric_id":${JSON.stringify(seed.metricKey)},"idempotency_key":"`;
  return () => `${head}${nextKey()}"}`;
}

/** `{"events":[…]}` with `size` events, each with its own idempotency key. */
export function batchOf(size: number): (seed: Seed, row: string) => () => string {
  return (seed, row) => {
    const event = singleEvent(seed, row);
    return () => {
      const events = new Array<string>(size);
      for (let i = 0; i < size; i++) events[i] = event();
      return `{"events":[${events.join(",")}]}`;
    };
  };
}

/** A canAccess body for the entitled customer; the same for every request (no idempotency key). */
export function canAccessBody(feature: string, consume = false): (seed: Seed) => () => string {
  return (seed) => {
    const body = JSON.stringify({
      customer_id: seed.entitledCustomerId,
      feature,
      ...(consume ? { consume: true } : {}),
    });
    return () => body;
  };
}

export const targets: readonly Target[] = [
  { name: "bare_get", server: "bare", method: "GET", path: "/healthz", baseline: "bare_get" },
  {
    // The same headers and body as meter_single, answered without any work: the POST yardstick.
    name: "bare_post",
    server: "bare",
    method: "POST",
    path: "/v1/meter",
    authenticated: true,
    body: singleEvent,
    baseline: "bare_post",
  },
  {
    // The latency yardstick for can_access_latency_4c_2000: what the same client sees from a server
    // that does nothing, at the same load (the tail here is the machine's and the client's).
    name: "bare_post_latency_4c_2000",
    server: "bare",
    method: "POST",
    path: "/v1/canAccess",
    authenticated: true,
    body: canAccessBody(BOOLEAN_FEATURE),
    connections: LATENCY_CONNECTIONS,
    overallRate: CAN_ACCESS_LATENCY_RATE,
  },
  { name: "healthz", server: "aforo", method: "GET", path: "/healthz", baseline: "bare_get" },
  {
    name: "meter_single",
    server: "aforo",
    method: "POST",
    path: "/v1/meter",
    authenticated: true,
    body: singleEvent,
    eventsPerRequest: 1,
    baseline: "bare_post",
  },
  {
    name: "meter_batch_100",
    server: "aforo",
    method: "POST",
    path: "/v1/meter/batch",
    authenticated: true,
    body: batchOf(100),
    // The batch goal names a p99 per request, and latency goals name at most 4 connections.
    connections: LATENCY_CONNECTIONS,
    eventsPerRequest: 100,
    baseline: "bare_post",
  },
  {
    name: "meter_batch_1000",
    server: "aforo",
    method: "POST",
    path: "/v1/meter/batch",
    authenticated: true,
    body: batchOf(1000),
    connections: LATENCY_CONNECTIONS,
    eventsPerRequest: 1000,
    baseline: "bare_post",
  },
  {
    name: "meter_batch_1000_latency_4c_60",
    server: "aforo",
    method: "POST",
    path: "/v1/meter/batch",
    authenticated: true,
    body: batchOf(1000),
    connections: LATENCY_CONNECTIONS,
    eventsPerRequest: 1000,
    overallRate: METER_BATCH_LATENCY_RATE,
  },
  {
    // What a fleet of gateways sends: many connections at once. At 10 connections single events
    // are bound by the commit's latency (~1 ms for a WAL flush here), not by CPU; the goal's p99
    // budget (25 ms) is for this kind of load.
    name: "meter_single_64c",
    server: "aforo",
    method: "POST",
    path: "/v1/meter",
    authenticated: true,
    body: singleEvent,
    eventsPerRequest: 1,
    connections: METER_FLEET_CONNECTIONS,
  },
  {
    name: "meter_single_latency_4c",
    server: "aforo",
    method: "POST",
    path: "/v1/meter",
    authenticated: true,
    body: singleEvent,
    eventsPerRequest: 1,
    connections: LATENCY_CONNECTIONS,
    overallRate: METER_LATENCY_RATE,
  },
  {
    // A boolean feature: the cheapest decision.
    name: "can_access",
    server: "aforo",
    method: "POST",
    path: "/v1/canAccess",
    authenticated: true,
    body: canAccessBody(BOOLEAN_FEATURE),
    decisions: true,
    baseline: "bare_post",
  },
  {
    // A metered feature, checked and counted in one step (the usage is recorded as an event).
    name: "can_access_consume",
    server: "aforo",
    method: "POST",
    path: "/v1/canAccess",
    authenticated: true,
    body: canAccessBody(METERED_FEATURE, true),
    decisions: true,
    consumes: true,
    baseline: "bare_post",
  },
  {
    name: "can_access_latency_4c_2000",
    server: "aforo",
    method: "POST",
    path: "/v1/canAccess",
    authenticated: true,
    body: canAccessBody(METERED_FEATURE),
    decisions: true,
    connections: LATENCY_CONNECTIONS,
    overallRate: CAN_ACCESS_LATENCY_RATE,
  },
];
