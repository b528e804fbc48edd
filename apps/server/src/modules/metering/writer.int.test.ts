import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DatabaseHandle } from "../../db/database.ts";
import { migrateToLatest } from "../../db/migrate.ts";
import { openTestDatabase, testDatabaseKind } from "../../testing/test-app.ts";
import { type EventRow, EventWriter } from "./writer.ts";

const TENANT = "ten_writer";
const at = new Date("2026-11-29T10:15:00Z");
let nextId = 0;

function event(idempotencyKey: string, value: string | null = null): EventRow {
  nextId += 1;
  return {
    id: `evt_${String(nextId).padStart(8, "0")}`,
    tenantId: TENANT,
    mode: "live",
    idempotencyKey,
    customerId: "cus_1",
    billableUnitId: "bu_1",
    metricKey: "tokens",
    eventType: null,
    quantity: value ?? "1",
    value,
    uniqueValue: null,
    properties: {},
    occurredAt: at,
    receivedAt: at,
    source: "api",
    counted: true,
    flags: [],
    enrichment: {},
    estimatedRevenue: null,
    estimatedCost: null,
  };
}

describe("EventWriter", () => {
  let database: DatabaseHandle;
  let drop: () => Promise<void>;
  beforeAll(async () => {
    ({ database, drop } = await openTestDatabase());
    await migrateToLatest(database.db);
  });
  afterAll(() => drop());

  async function stored() {
    const { rows } = await sql<{ events: string; counted: string; total: string }>`
      select (select count(*) from usage_events where tenant_id = ${TENANT})::text as events,
        (select coalesce(sum(event_count), 0) from usage_rollups where tenant_id = ${TENANT})::text as counted,
        (select coalesce(sum(value_sum), 0) from usage_rollups where tenant_id = ${TENANT})::text as total
    `.execute(database.db);
    return rows[0];
  }

  it("writes a commit that meets a stored key again, keeping the stored event and counting the new ones once", async () => {
    let nowMs = 0;
    const committed: string[] = [];
    const writer = new EventWriter(database, {
      now: () => nowMs,
      onCommitted: (rows) => committed.push(...rows.map((row) => row.idempotencyKey)),
    });

    const first = await writer.write([event("a", "1.5"), event("b", "2")]);
    expect(first.map((o) => o.status)).toEqual(["ACCEPTED", "ACCEPTED"]);

    // "b" is stored: the plain insert fails as a whole and the commit is written with ON CONFLICT.
    const mixed = await writer.write([event("b", "100"), event("c", "3"), event("d", "0.25")]);
    expect(mixed).toEqual([
      { status: "DUPLICATE", id: first[1]?.id },
      { status: "ACCEPTED", id: expect.any(String) },
      { status: "ACCEPTED", id: expect.any(String) },
    ]);
    expect(await stored()).toEqual({ events: "4", counted: "4", total: "6.75" });

    // While duplicates are expected, new rows still land once.
    expect((await writer.write([event("e", "1")])).map((o) => o.status)).toEqual(["ACCEPTED"]);

    // Later the plain insert is tried again, meets "a", and falls back once more.
    nowMs += 60_000;
    const again = await writer.write([event("f", "10"), event("a", "1000")]);
    expect(again).toEqual([
      { status: "ACCEPTED", id: expect.any(String) },
      { status: "DUPLICATE", id: first[0]?.id },
    ]);
    expect(await stored()).toEqual({ events: "6", counted: "6", total: "17.75" });
    expect(committed).toEqual(["a", "b", "c", "d", "e", "f"]);
  });

  it("stores a key once when the same commit carries it twice", async () => {
    const writer = new EventWriter(database);
    const outcomes = await writer.write([event("twice-1"), event("twice-1"), event("twice-2")]);
    expect(outcomes.map((o) => o.status)).toEqual(["ACCEPTED", "DUPLICATE", "ACCEPTED"]);
    expect(outcomes[1]?.id).toBe(outcomes[0]?.id);
  });

  it("shares large waiting writes among the free lanes and keeps small ones in one commit", async () => {
    const commits: number[] = [];
    const writer = new EventWriter(database, {
      concurrency: 4,
      onCommitted: (rows) => commits.push(rows.length),
    });
    const rowsOf = (prefix: string, count: number) =>
      Array.from({ length: count }, (_, i) => event(`${prefix}-${i}`));

    // Handed over in one turn of the event loop, as concurrent requests are.
    await Promise.all([1, 2, 3, 4].map((n) => writer.write(rowsOf(`large-${n}`, 600))));
    expect(commits).toEqual([600, 600, 600, 600]);

    commits.length = 0;
    await Promise.all([1, 2, 3, 4].map((n) => writer.write(rowsOf(`small-${n}`, 10))));
    expect(commits).toEqual([40]);
  });

  it("settles once the writes handed over before it are committed or failed, without waiting for later ones", async () => {
    // One row a commit, one commit at a time: the four writes commit (or fail) in turn.
    const writer = new EventWriter(database, { maxBatchRows: 1 });
    await writer.settled(); // nothing handed over: at once
    const order: string[] = [];
    const earlier = writer.write([event("settle-1")]).then(() => order.push("earlier committed"));
    const failing = writer
      .write([{ ...event("settle-2"), value: "not a number" }])
      .catch(() => order.push("failing failed"));
    const settled = writer.settled().then(() => order.push("settled"));
    const later = writer.write([event("settle-3")]).then(() => order.push("later committed"));
    await Promise.all([earlier, failing, settled, later]);
    expect(order).toEqual(["earlier committed", "failing failed", "settled", "later committed"]);
    const { rows } = await sql<{ key: string }>`
      select idempotency_key as key from usage_events
      where tenant_id = ${TENANT} and idempotency_key like 'settle-%' order by 1
    `.execute(database.db);
    expect(rows.map((row) => row.key)).toEqual(["settle-1", "settle-3"]);
  });

  // The embedded database runs a statement to its end before the event loop turns again, so only
  // PostgreSQL has a commit still running when the next writes arrive (and it is the one with lanes).
  it.skipIf(testDatabaseKind() === "pglite")(
    "lets small writes that arrive while a commit runs wait and join the next commit",
    async () => {
      const commits: number[] = [];
      const writer = new EventWriter(database, {
        concurrency: 4,
        onCommitted: (rows) => commits.push(rows.length),
      });
      const nextTurn = () => new Promise((resolve) => setImmediate(resolve));
      const running = writer.write(Array.from({ length: 2_000 }, (_, i) => event(`running-${i}`)));
      await nextTurn();
      const waiting: Promise<unknown>[] = [];
      for (let i = 0; i < 3; i++) {
        waiting.push(writer.write([event(`arriving-${i}`)]));
        await nextTurn();
      }
      await Promise.all([running, ...waiting]);
      expect(commits).toEqual([2_000, 3]);
    },
  );
});
