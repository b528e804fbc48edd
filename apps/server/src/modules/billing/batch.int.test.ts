import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TenantScope } from "../../http/route-config.ts";
import { createTestApp, type TestApp, type TestTenant } from "../../testing/test-app.ts";
import type { BillRun } from "../bill-runs/domain.ts";
import { BillRunService } from "../bill-runs/service.ts";
import type { PeriodInvoicing } from "./ports.ts";

type Body = Record<string, unknown>;

/**
 * The set-based bill run (invoicePeriods, batch.ts) against the one-period-at-a-time one
 * (invoicePeriod): two tenants are given the same catalogue, customers, subscriptions, plan
 * changes, drafts and events at the same instants; one is billed per invoice, the other in chunks;
 * their invoices and credit notes must be the same, field for field, ids aside.
 */

/** One tenant's copy of the scenario, and every id it created under a label both copies share. */
class World {
  readonly t: TestApp;
  readonly tenant: TestTenant;
  readonly scope: TenantScope;
  /** id → label ("customer:3"), for comparing the two copies. */
  readonly labels = new Map<string, string>();
  readonly subscriptions = new Map<string, { id: string; customerId: string }>();
  readonly offerings = new Map<string, string>();
  #events = 0;
  #runs = 0;

  constructor(t: TestApp, tenant: TestTenant) {
    this.t = t;
    this.tenant = tenant;
    this.scope = { tenantId: tenant.id, mode: "test" };
    this.labels.set(tenant.id, "tenant");
  }

  async request(method: "GET" | "POST", url: string, body?: unknown, status?: number): Promise<Body> {
    const response = await this.t.request(method, url, {
      key: this.tenant.testKey,
      tenant: this.tenant.id,
      body,
    });
    expect(response.statusCode, `${method} ${url}: ${response.body}`).toBe(
      status ?? (method === "POST" ? 201 : 200),
    );
    return response.json();
  }

  async create(label: string, url: string, body: Body): Promise<Body> {
    const created = await this.request("POST", url, body);
    this.labels.set(String(created.id), label);
    return created;
  }

  /** A plan and its published offering; `offering` adds to the offering (billing mode, trial). */
  async offering(label: string, plan: Body, offering: Body = {}): Promise<void> {
    const ratePlan = await this.create(`plan:${label}`, "/v1/rate_plans", {
      name: `Plan ${label}`,
      currency: "USD",
      billing_period: { interval: "month", count: 1 },
      entitlements: [],
      ...plan,
    });
    const created = await this.create(`offering:${label}`, "/v1/offerings", {
      name: `Offering ${label}`,
      rate_plan_ids: [ratePlan.id],
      billing_mode: "POSTPAID",
      status: "PUBLISHED",
      ...offering,
    });
    this.offerings.set(label, String(created.id));
  }

  /** Labels a bill run's id (its invoices carry it). */
  labelRun(id: unknown): void {
    this.#runs += 1;
    this.labels.set(String(id), `bill-run:${this.#runs}`);
  }

  async subscribe(label: string, offering: string, startAt: string, extra: Body = {}, customer: Body = {}) {
    const created = await this.create(`customer:${label}`, "/v1/customers", {
      name: `Customer ${label}`,
      email: `${label}@example.com`,
      currency: "USD",
      ...customer,
    });
    const subscription = await this.create(`subscription:${label}`, "/v1/subscriptions", {
      customer_id: created.id,
      offering_id: this.offerings.get(offering),
      start_at: startAt,
      ...extra,
    });
    this.subscriptions.set(label, { id: String(subscription.id), customerId: String(created.id) });
  }

  /** One event now (the clock is moved to just after it by the caller's timeline). */
  async meter(label: string, unit: string, quantity: string, timestamp: string, properties: Body = {}) {
    this.#events += 1;
    const customerId = this.subscriptions.get(label)?.customerId;
    const body = await this.request(
      "POST",
      "/v1/meter",
      {
        customer_id: customerId,
        metric_id: unit,
        quantity,
        timestamp,
        idempotency_key: `e${this.#events}`,
        properties,
      },
      202,
    );
    this.labels.set(String(body.id ?? body.event_id), `event:${this.#events}`);
    return body;
  }

  subscriptionId(label: string): string {
    const found = this.subscriptions.get(label);
    if (!found) throw new Error(`no subscription ${label}`);
    return found.id;
  }

  /** Every invoice and credit note, ids replaced by labels, numbers left out (checked apart). */
  async snapshot(): Promise<{ invoices: unknown[]; creditNotes: unknown[]; numbers: string[] }> {
    const billing = this.t.context.billing;
    const invoices = (await billing.list(this.scope, {}, { limit: 100 })).data;
    expect(invoices.length).toBeLessThan(100);
    for (const invoice of invoices) {
      if (invoice.billingEntityId) this.labels.set(invoice.billingEntityId, "billing-entity");
      this.labels.set(
        invoice.id,
        `invoice:${this.labels.get(invoice.subscriptionId)}:${invoice.periodStart.toISOString()}`,
      );
    }
    const notes = (await billing.listCreditNotes(this.scope, {}, { limit: 100 })).data;
    for (const [index, note] of notes.entries()) this.labels.set(note.id, `credit-note:${index}`);
    const relabel = (value: unknown): unknown => {
      let text = JSON.stringify(value, (_key, item) => (typeof item === "bigint" ? `${item}n` : item));
      for (const [id, label] of this.labels) text = text.split(id).join(label);
      return JSON.parse(text);
    };
    const byKey = (a: { key: string }, b: { key: string }) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
    return {
      invoices: invoices
        .map(({ number: _number, ...invoice }) => ({
          key: String(relabel(invoice.id)),
          invoice: relabel(invoice),
        }))
        .sort(byKey),
      creditNotes: notes
        .map((note) => ({
          key: `${relabel(note.invoiceId)}:${note.amountMinor}`,
          note: relabel({ ...note, id: "" }),
        }))
        .sort(byKey),
      numbers: invoices.map((invoice) => invoice.number ?? "").sort(),
    };
  }
}

/** Same scenario, same instants, in every world. */
async function inEach(worlds: readonly World[], step: (world: World) => Promise<unknown>): Promise<void> {
  for (const world of worlds) await step(world);
}

/** Pages of four subscriptions: a handful of subscriptions make several chunks (and rounds). */
const PAGE_SIZE = 4;

/**
 * A bill run of `world` by the one-at-a-time path (invoicePeriod, the context's run service) or the
 * set-based one (a run service of four-subscription pages, each prepared while the one before it
 * is written). `wrap` may stand between the run and invoicing.
 */
async function billRun(
  world: World,
  path: "per-invoice" | "set-based",
  wrap: (real: PeriodInvoicing, chunks: number[]) => PeriodInvoicing = chunksOf,
): Promise<BillRun> {
  const { context } = world.t;
  const real = context.billing;
  const chunks: number[] = [];
  const service =
    path === "per-invoice"
      ? context.billRuns
      : new BillRunService(
          world.t.database,
          world.t.clock,
          {
            subscriptions: context.subscriptions,
            versions: context.pricing.versions,
            closedPeriods: context.billRuns.closedPeriods,
            jobs: context.jobs,
          },
          { pageSize: PAGE_SIZE },
        );
  const previous = service.invoicing;
  service.invoicing =
    path === "per-invoice" ? { invoicePeriod: real.invoicePeriod.bind(real) } : wrap(real, chunks);
  try {
    const run = await service.startRun(world.scope, { execution: "inline" });
    world.labelRun(run.id);
    // Every period the set-based run invoiced went through a chunk.
    if (path === "set-based" && run.periodsInvoiced > 0) expect(chunks.length).toBeGreaterThan(0);
    return run;
  } finally {
    service.invoicing = previous;
  }
}

/** Invoicing as it is, counting the chunks the run asks for. */
function chunksOf(real: PeriodInvoicing, chunks: number[]): PeriodInvoicing {
  return {
    invoicePeriod: (...args) => real.invoicePeriod(...args),
    invoicePeriods: (scope, requests, options) => {
      chunks.push(requests.length);
      return real.invoicePeriods?.(scope, requests, options) ?? Promise.resolve([]);
    },
    prepareInvoicePeriods: (scope, requests, options) => {
      chunks.push(requests.length);
      if (!real.prepareInvoicePeriods) throw new Error("billing prepares no chunks");
      return real.prepareInvoicePeriods(scope, requests, options);
    },
  };
}

function sequences(numbers: readonly string[]): Map<string, number[]> {
  const byYear = new Map<string, number[]>();
  for (const number of numbers) {
    const [prefix, year, sequence] = number.split("-");
    const key = `${prefix}-${year}`;
    byYear.set(
      key,
      [...(byYear.get(key) ?? []), Number(sequence)].sort((a, b) => a - b),
    );
  }
  return byYear;
}

/** Numbers 1..n in every prefix and year: no gap, no duplicate. */
function expectGapless(numbers: readonly string[]) {
  for (const [, list] of sequences(numbers)) {
    expect(list).toEqual(Array.from({ length: list.length }, (_, index) => index + 1));
  }
}

describe("set-based bill runs", () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(() => t.close());

  it("makes the same invoices and credit notes as invoicing one period at a time, with gapless numbers", async () => {
    t.clock.set("2026-08-01T00:00:00Z");
    const worlds = [new World(t, await t.createTenant()), new World(t, await t.createTenant())];
    const [perInvoice, setBased] = worlds as [World, World];
    await inEach(worlds, async (w) => {
      for (const [key, aggregation, field] of [
        ["calls", "SUM", null],
        ["requests", "COUNT", null],
        ["seats", "LATEST", null],
        ["peak", "MAX", null],
        ["latency", "AVG", null],
        ["users", "UNIQUE", "user"],
      ] as const) {
        await w.create(`unit:${key}`, "/v1/billable_units", {
          key,
          name: key,
          unit_label: key,
          aggregation,
          ...(field ? { field } : {}),
        });
      }
      await w.create("tax:de", "/v1/tax_rates", {
        name: "VAT",
        country: "DE",
        percent: "19",
        inclusive: false,
      });
      await w.create("promotion:two", "/v1/promotions", {
        code: "TWOMONTHS",
        percent_off: "10",
        duration: "repeating",
        duration_in_periods: 2,
      });
      const tiers = [
        { up_to: "100", unit_price: "0.05" },
        { up_to: "1000", unit_price: "0.02" },
        { up_to: null, unit_price: "0.01" },
      ];
      await w.offering("graduated", { items: [{ model: "GRADUATED", billable_unit: "calls", tiers }] });
      await w.offering("advance", {
        items: [
          { model: "FLAT_RATE", flat_amount: "30", timing: "in_advance" },
          { model: "PER_UNIT", billable_unit: "requests", unit_price: "0.10" },
        ],
      });
      await w.offering("upgrade", {
        items: [{ model: "FLAT_RATE", flat_amount: "90", timing: "in_advance" }],
      });
      await w.offering("rollover", {
        items: [
          {
            model: "PER_UNIT",
            billable_unit: "calls",
            unit_price: "0.01",
            included_free: "1000",
            rollover: { max: "500" },
          },
        ],
      });
      await w.offering("arrears", {
        items: [{ model: "FLAT_RATE", flat_amount: "100", timing: "in_arrears" }],
      });
      await w.offering("gauges", {
        items: [
          { model: "PER_UNIT", billable_unit: "seats", unit_price: "1.00" },
          { model: "PER_UNIT", billable_unit: "peak", unit_price: "0.50" },
          { model: "PER_UNIT", billable_unit: "latency", unit_price: "0.001" },
          { model: "PER_UNIT", billable_unit: "users", unit_price: "2.00" },
        ],
      });
      await w.offering("commitment", {
        items: [{ model: "PER_UNIT", billable_unit: "calls", unit_price: "0.01" }],
        minimum_commitment: "50.00",
      });
      await w.offering(
        "trial",
        { items: [{ model: "FLAT_RATE", flat_amount: "20", timing: "in_advance" }] },
        { trial_days: 14 },
      );
      await w.offering(
        "prepaid",
        { items: [{ model: "PER_UNIT", billable_unit: "calls", unit_price: "0.01" }] },
        { billing_mode: "PREPAID", initial_credits: "5.00" },
      );

      const august = "2026-08-01T00:00:00Z";
      await w.subscribe("graduated", "graduated", august);
      await w.subscribe("graduated-quiet", "graduated", august);
      await w.subscribe("advance", "advance", august);
      await w.subscribe("upgraded", "advance", august);
      await w.subscribe("rollover", "rollover", august);
      await w.subscribe("promoted", "arrears", august, { promotion_code: "TWOMONTHS" });
      await w.subscribe("taxed", "arrears", august, {}, { tax: { country: "DE" } });
      await w.subscribe("gauges", "gauges", august);
      await w.subscribe("commitment", "commitment", august);
      await w.subscribe("trial", "trial", august);
      await w.subscribe("prepaid", "prepaid", august);
      await w.subscribe("cancelled", "advance", august);
      await w.subscribe("late", "graduated", august);
      await w.subscribe("drafted", "graduated", august);
    });
    await inEach(worlds, (w) => w.subscribe("mid-month", "advance", "2026-07-15T00:00:00Z"));

    // Three months of usage, the clock moving with it (metered on time, never late).
    const months = ["2026-08", "2026-09", "2026-10"];
    for (const [index, month] of months.entries()) {
      t.clock.set(`${month}-10T12:00:00Z`);
      await inEach(worlds, async (w) => {
        await w.meter("graduated", "calls", String(400 * (index + 1)), `${month}-10T10:00:00Z`);
        await w.meter("graduated", "calls", "12.5", `${month}-10T11:30:00Z`);
        await w.meter("advance", "requests", "1", `${month}-10T10:00:00Z`);
        await w.meter("advance", "requests", "1", `${month}-10T11:00:00Z`);
        await w.meter("upgraded", "requests", "3", `${month}-10T09:00:00Z`);
        await w.meter("rollover", "calls", index === 0 ? "200" : "1600", `${month}-10T10:00:00Z`);
        await w.meter("gauges", "seats", String(5 + index), `${month}-10T09:00:00Z`);
        await w.meter("gauges", "seats", String(3 + index), `${month}-10T11:00:00Z`);
        await w.meter("gauges", "peak", "7", `${month}-10T09:00:00Z`);
        await w.meter("gauges", "peak", String(9 + index), `${month}-10T10:00:00Z`);
        await w.meter("gauges", "latency", "120", `${month}-10T09:00:00Z`);
        await w.meter("gauges", "latency", "95.5", `${month}-10T10:00:00Z`);
        await w.meter("gauges", "users", "1", `${month}-10T09:00:00Z`, { user: "ada" });
        await w.meter("gauges", "users", "1", `${month}-10T10:00:00Z`, { user: "grace" });
        await w.meter("gauges", "users", "1", `${month}-10T11:00:00Z`, { user: "ada" });
        await w.meter("commitment", "calls", String(1000 + index), `${month}-10T10:00:00Z`);
        await w.meter("prepaid", "calls", "150", `${month}-10T10:00:00Z`);
        await w.meter("late", "calls", "50", `${month}-10T10:00:00Z`);
        await w.meter("drafted", "calls", "70", `${month}-10T10:00:00Z`);
        await w.meter("mid-month", "requests", "4", `${month}-10T10:00:00Z`);
      });
      await t.context.prepaidUsage.idle();
      if (month === "2026-09") {
        t.clock.set("2026-09-20T00:00:00Z");
        await inEach(worlds, (w) =>
          w.request(
            "POST",
            `/v1/subscriptions/${w.subscriptionId("cancelled")}/cancel`,
            { at_period_end: true },
            200,
          ),
        );
      }
    }
    // A plan change in the middle of October (proration lines), and a period drafted before the run.
    t.clock.set("2026-10-16T00:00:00Z");
    await inEach(worlds, (w) =>
      w.request(
        "POST",
        `/v1/subscriptions/${w.subscriptionId("upgraded")}/change_plan`,
        { offering_id: w.offerings.get("upgrade") },
        200,
      ),
    );
    await inEach(worlds, (w) =>
      t.context.billing.draftPeriod(w.scope, w.subscriptionId("drafted"), {
        start: new Date("2026-09-01T00:00:00Z"),
        end: new Date("2026-10-01T00:00:00Z"),
      }),
    );

    // The first run: August, September and October of most subscriptions (three rounds).
    t.clock.set("2026-11-01T00:10:00Z");
    const first = [await billRun(perInvoice, "per-invoice"), await billRun(setBased, "set-based")];
    expect(first.map((run) => run.status)).toEqual(["COMPLETED", "COMPLETED"]);
    expect(first[1]?.invoicesCreated).toBe(first[0]?.invoicesCreated);
    expect(first[1]?.invoicesCreated).toBeGreaterThan(30);

    // A late event for closed October (reconciliation), then November; the second run adjusts it.
    t.clock.set("2026-11-10T12:00:00Z");
    await inEach(worlds, async (w) => {
      const late = await w.meter("late", "calls", "30", "2026-10-20T00:00:00Z");
      expect(late.flags).toEqual(expect.arrayContaining(["RECONCILIATION"]));
      await w.meter("graduated", "calls", "99", "2026-11-10T10:00:00Z");
      await w.meter("late", "calls", "5", "2026-11-10T10:00:00Z");
      await w.meter("gauges", "seats", "2", "2026-11-10T10:00:00Z");
      await w.meter("prepaid", "calls", "900", "2026-11-10T10:00:00Z");
    });
    await t.context.prepaidUsage.idle();
    t.clock.set("2026-12-01T00:10:00Z");
    expect((await billRun(perInvoice, "per-invoice")).status).toBe("COMPLETED");
    expect((await billRun(setBased, "set-based")).status).toBe("COMPLETED");

    const [expected, actual] = [await perInvoice.snapshot(), await setBased.snapshot()];
    expect(actual.invoices.length).toBe(expected.invoices.length);
    expect(actual.invoices).toEqual(expected.invoices);
    expect(actual.creditNotes).toEqual(expected.creditNotes);
    expectGapless(expected.numbers);
    expectGapless(actual.numbers);
    // The late event was adjusted once, on the set-based side too.
    const lines = actual.invoices.flatMap(
      (entry) => (entry as { invoice: { lines: { description: string }[] } }).invoice.lines,
    );
    expect(lines.filter((line) => line.description.startsWith("Adjustment for"))).toHaveLength(1);
    // Nothing left: a third run creates nothing on either side.
    expect((await billRun(setBased, "set-based")).invoicesCreated).toBe(0);
  });

  it("announces every invoice of a chunk and queues the collection of those a default method pays", async () => {
    t.clock.set("2026-10-01T00:00:00Z");
    const world = new World(t, await t.createTenant());
    await world.offering("flat", {
      items: [{ model: "FLAT_RATE", flat_amount: "10", timing: "in_arrears" }],
    });
    for (let index = 0; index < 5; index += 1)
      await world.subscribe(`s${index}`, "flat", "2026-10-01T00:00:00Z");
    await world.request("POST", "/v1/webhook_endpoints", {
      url: "http://127.0.0.1:9/hooks",
      events: ["invoice.created", "invoice.finalized"],
    });
    // A saved default method for one customer (the provider is never called here).
    const paying = world.subscriptions.get("s2")?.customerId ?? "";
    await t.database.db
      .insertInto("payment_methods")
      .values({
        id: "pm_batch_test",
        tenant_id: world.tenant.id,
        mode: "test",
        customer_id: paying,
        provider: "stripe",
        provider_payment_method_id: "pm_card_visa",
        is_default: true,
        created_at: new Date("2026-10-01T00:00:00Z"),
      })
      .execute();
    const queued: unknown[] = [];
    const jobs = t.context.jobs;
    const send = jobs.send;
    jobs.send = async (name, data, options) => {
      if (name === "payments.collect") queued.push(data);
      else return send.call(jobs, name, data, options);
      return undefined;
    };
    t.clock.set("2026-11-01T00:10:00Z");
    try {
      expect((await billRun(world, "set-based")).invoicesCreated).toBe(5);
    } finally {
      jobs.send = send;
    }
    const invoices = (await t.context.billing.list(world.scope, {}, { limit: 10 })).data;
    const events = await t.database.db
      .selectFrom("webhook_events")
      .select(["type", "payload"])
      .where("tenant_id", "=", world.tenant.id)
      .execute();
    const announced = (type: string) =>
      events
        .filter((event) => event.type === type)
        .map((event) => JSON.stringify(event.payload))
        .filter((payload) => invoices.some((invoice) => payload.includes(invoice.id)));
    expect(announced("invoice.created")).toHaveLength(5);
    expect(announced("invoice.finalized")).toHaveLength(5);
    const payingInvoice = invoices.find((invoice) => invoice.customerId === paying);
    expect(queued).toEqual([{ tenantId: world.tenant.id, mode: "test", invoiceId: payingInvoice?.id }]);
  });

  it("finishes a run interrupted half-way when run again, with the same invoices and no gap", async () => {
    t.clock.set("2026-08-01T00:00:00Z");
    const worlds = [new World(t, await t.createTenant()), new World(t, await t.createTenant())];
    const [perInvoice, setBased] = worlds as [World, World];
    await inEach(worlds, async (w) => {
      await w.create("unit:calls", "/v1/billable_units", {
        key: "calls",
        name: "calls",
        unit_label: "calls",
        aggregation: "SUM",
      });
      await w.offering("graduated", {
        items: [
          {
            model: "GRADUATED",
            billable_unit: "calls",
            tiers: [
              { up_to: "10", unit_price: "0.01" },
              { up_to: null, unit_price: "0.005" },
            ],
          },
          { model: "FLAT_RATE", flat_amount: "10", timing: "in_advance" },
        ],
      });
      for (let index = 0; index < 6; index += 1) {
        await w.subscribe(`s${index}`, "graduated", "2026-08-01T00:00:00Z");
      }
    });
    for (const month of ["2026-08", "2026-09", "2026-10"]) {
      t.clock.set(`${month}-10T12:00:00Z`);
      await inEach(worlds, async (w) => {
        for (let index = 0; index < 6; index += 1) {
          await w.meter(`s${index}`, "calls", String(index * 7 + 1), `${month}-10T10:00:00Z`);
        }
      });
    }
    t.clock.set("2026-11-01T00:10:00Z");
    expect((await billRun(perInvoice, "per-invoice")).invoicesCreated).toBe(18);

    // The process "dies" after the second chunk committed, before its periods were recorded:
    // pages of four, three rounds each, so the first page's September chunk is the one lost.
    let commits = 0;
    const interrupted = await billRun(setBased, "set-based", (real, chunks) => ({
      invoicePeriod: (...args) => real.invoicePeriod(...args),
      prepareInvoicePeriods: async (scope, requests, options) => {
        chunks.push(requests.length);
        if (!real.prepareInvoicePeriods) throw new Error("billing prepares no chunks");
        const prepared = await real.prepareInvoicePeriods(scope, requests, options);
        return {
          commit: async () => {
            commits += 1;
            const outcomes = await prepared.commit();
            if (commits === 2) throw new Error("the process stopped");
            return outcomes;
          },
        };
      },
    }));
    expect(interrupted).toMatchObject({ status: "FAILED", error: "the process stopped", invoicesCreated: 4 });
    const resumed = await billRun(setBased, "set-based");
    expect(resumed.status).toBe("COMPLETED");
    // September of the first page exists already: the run finalises and records it, creating the rest.
    expect(resumed.invoicesCreated).toBe(18 - 8);

    const [expected, actual] = [await perInvoice.snapshot(), await setBased.snapshot()];
    expect(actual.invoices).toHaveLength(18);
    // The interrupted chunk's invoices name the run that made them; otherwise they are the same.
    const runless = (snapshot: { invoices: unknown[] }) =>
      JSON.parse(JSON.stringify(snapshot.invoices).replace(/bill-run:\d+/g, "bill-run"));
    expect(runless(actual)).toEqual(runless(expected));
    expectGapless(actual.numbers);
    expect(actual.numbers).toHaveLength(18);
    expect((await billRun(setBased, "set-based")).invoicesCreated).toBe(0);
  });
});
