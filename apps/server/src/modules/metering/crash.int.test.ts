import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { openDatabase } from "../../db/database.ts";
import { startChildServer } from "../../testing/child-server.ts";
import { testDatabaseKind } from "../../testing/test-app.ts";

const OPERATOR_KEY = `afo_${randomBytes(24).toString("hex")}`;

interface Seeded {
  key: string;
  tenant: string;
  customerId: string;
}

async function api(
  url: string,
  method: string,
  pathname: string,
  key: string,
  body?: unknown,
  tenant?: string,
) {
  const response = await fetch(`${url}${pathname}`, {
    method,
    headers: {
      authorization: `Bearer ${key}`,
      ...(tenant ? { "x-tenant-id": tenant } : {}),
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function seed(url: string): Promise<Seeded> {
  const tenant = await api(url, "POST", "/v1/tenants", OPERATOR_KEY, { name: "Crash Test" });
  const slug = tenant.body.slug as string;
  const defaultKey = (tenant.body.api_keys as { test: string }).test;
  const fast = await api(
    url,
    "POST",
    "/v1/api_keys",
    defaultKey,
    { mode: "test", rate_limits: { meter: { limit: 10_000_000, burst: 1_000_000 } } },
    slug,
  );
  const key = fast.body.key as string;
  await api(
    url,
    "POST",
    "/v1/billable_units",
    key,
    { key: "api_calls", name: "API calls", unit_label: "calls", aggregation: "COUNT" },
    slug,
  );
  const customer = await api(
    url,
    "POST",
    "/v1/customers",
    key,
    { name: "Load", email: "load@example.com", currency: "USD" },
    slug,
  );
  return { key, tenant: slug, customerId: customer.body.id as string };
}

/** Sends events with unique keys from `connections` loops until stopped; records what was acknowledged. */
function loadUntilStopped(url: string, seeded: Seeded, connections: number) {
  const acknowledged = new Set<string>();
  const sent = new Set<string>();
  let running = true;
  let next = 0;
  const loops = Array.from({ length: connections }, async () => {
    while (running) {
      const key = `crash-${next++}`;
      sent.add(key);
      try {
        const response = await api(
          url,
          "POST",
          "/v1/meter",
          seeded.key,
          { customer_id: seeded.customerId, metric_id: "api_calls", idempotency_key: key },
          seeded.tenant,
        );
        if (response.status === 202) acknowledged.add(key);
      } catch {
        return; // the server died under us
      }
    }
  });
  return {
    acknowledged,
    sent,
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

describe("a crash under load", () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  /** Where the child server keeps its data, and how the test reads it afterwards. */
  async function storage(): Promise<{
    env: Record<string, string>;
    countByKey(): Promise<Map<string, number>>;
    rollupTotal(): Promise<number>;
  }> {
    if (testDatabaseKind() === "postgres") {
      const base = process.env.DATABASE_URL ?? "";
      const schema = `crash_${randomBytes(5).toString("hex")}`;
      const admin = new pg.Client({ connectionString: base });
      await admin.connect();
      await admin.query(`create schema ${schema}`);
      cleanups.push(async () => {
        await admin.query(`drop schema ${schema} cascade`);
        await admin.end();
      });
      const url = new URL(base);
      url.searchParams.set("options", `-c search_path=${schema}`);
      const query = async (text: string) =>
        ((await admin.query(`set search_path to ${schema}; ${text}`)) as unknown as pg.QueryResult[])[1]
          ?.rows ?? [];
      return {
        env: { DATABASE_URL: url.toString(), AFORO_OPERATOR_KEY: OPERATOR_KEY },
        countByKey: async () =>
          new Map(
            (await query("select idempotency_key, count(*)::int as n from usage_events group by 1")).map(
              (r) => [r.idempotency_key, r.n],
            ),
          ),
        rollupTotal: async () =>
          Number(
            (await query("select coalesce(sum(event_count), 0)::int as n from usage_rollups"))[0]?.n ?? 0,
          ),
      };
    }
    const dataDir = await mkdtemp(path.join(tmpdir(), "aforo-crash-"));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const read = async <T>(work: (db: Awaited<ReturnType<typeof openDatabase>>) => Promise<T>) => {
      const database = await openDatabase({ databaseUrl: undefined, dataDir });
      try {
        return await work(database);
      } finally {
        await database.close();
      }
    };
    return {
      env: { DATABASE_URL: "", AFORO_DATA_DIR: dataDir, AFORO_OPERATOR_KEY: OPERATOR_KEY },
      countByKey: () =>
        read(async ({ db }) => {
          const rows = await db
            .selectFrom("usage_events")
            .select(["idempotency_key", (eb) => eb.fn.countAll<string>().as("n")])
            .groupBy("idempotency_key")
            .execute();
          return new Map(rows.map((r) => [r.idempotency_key, Number(r.n)]));
        }),
      rollupTotal: () =>
        read(async ({ db }) => {
          const row = await db
            .selectFrom("usage_rollups")
            .select((eb) => eb.fn.sum<string>("event_count").as("n"))
            .executeTakeFirst();
          return Number(row?.n ?? 0);
        }),
    };
  }

  it("keeps every acknowledged event exactly once after SIGKILL, and retries never count twice", async () => {
    const store = await storage();
    const first = await startChildServer(store.env);
    const seeded = await seed(first.url);
    const load = loadUntilStopped(first.url, seeded, 16);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    await first.kill();
    await load.stop();
    expect(load.acknowledged.size).toBeGreaterThan(50);

    // After restart, clients retry everything they sent: acknowledged events must be DUPLICATEs.
    const second = await startChildServer(store.env);
    try {
      const retries = [...load.sent];
      for (let i = 0; i < retries.length; i += 50) {
        await Promise.all(
          retries.slice(i, i + 50).map(async (key) => {
            const response = await api(
              second.url,
              "POST",
              "/v1/meter",
              seeded.key,
              { customer_id: seeded.customerId, metric_id: "api_calls", idempotency_key: key },
              seeded.tenant,
            );
            expect(response.status).toBe(202);
            if (load.acknowledged.has(key))
              expect(response.body.status, `acknowledged ${key} was lost`).toBe("DUPLICATE");
          }),
        );
      }
    } finally {
      await second.stop();
    }

    const counts = await store.countByKey();
    for (const key of load.sent) expect(counts.get(key), key).toBe(1);
    expect(counts.size).toBe(load.sent.size);
    expect(await store.rollupTotal()).toBe(load.sent.size);
  }, 120_000);
});
