/**
 * A bill run's chunk, set-based (PeriodInvoicing.invoicePeriods). invoicePeriod reads, computes
 * and writes one period at a time (about 25 statements and a transaction per invoice); here a
 * chunk of subscriptions is read in a handful of statements (ChunkReads), every invoice is computed
 * by the very same #compute of BillingService (only its reads are served from the chunk), and the
 * drafts, lines, carry-overs, numbers and finalisation are written in one transaction per chunk by
 * the same #storeDrafts and #finalizeMany that invoicePeriod uses for its one invoice. The invoices
 * are therefore the ones invoicePeriod would make (billing/batch.int.test.ts compares them).
 *
 * What the chunk does not read set-wise falls back, per item, to the one-at-a-time reads or path: a
 * subscription time has to move on first (its lazy advance), a customer with late events kept for
 * reconciliation (invoicePeriod adjusts them, with credit notes and retries), a period invoiced
 * before (its draft is finalised), promotions, and the states of prepaid wallets.
 */
import type { Kysely } from "kysely";
import type { Clock } from "../../clock.ts";
import type { DatabaseHandle } from "../../db/database.ts";
import type { Database } from "../../db/schema.ts";
import type { TenantScope } from "../../http/route-config.ts";
import type { Customer } from "../customers/domain.ts";
import type { MeteringReadService, UsageAnswer, UsageQueryInput } from "../metering/read-service.ts";
import { isDue } from "../subscriptions/domain/lifecycle.ts";
import type { Subscription } from "../subscriptions/domain/subscription.ts";
import type { StoredPhase } from "../subscriptions/service.ts";
import { listPhasesOf } from "../subscriptions/store.ts";
import { paysFromWallet } from "../wallets/prepaid.ts";
import type { Invoice } from "./domain/invoice.ts";
import type { PricedPlan } from "./domain/pipeline/index.ts";
import type {
  BillingPeriod,
  InvoiceWalletState,
  PendingLateUsage,
  PeriodOutcome,
  PeriodRequest,
  PreparedPeriods,
} from "./ports.ts";
import * as bulk from "./store/bulk.ts";
import { findInvoiceIdForPeriod } from "./store/invoices.ts";

/** Everything #compute reads, one subscription period at a time. */
export interface InvoiceReads {
  /** The subscription with time applied (a due one is advanced and saved first). */
  subscription(scope: TenantScope, id: string): Promise<Subscription>;
  phases(scope: TenantScope, subscriptionId: string): Promise<StoredPhase[]>;
  customer(scope: TenantScope, id: string): Promise<Customer>;
  /** Late usage of periods that ended by `before`, not adjusted yet ([] without reconciliation). */
  pendingAdjustments(scope: TenantScope, subscriptionId: string, before: Date): Promise<PendingLateUsage[]>;
  usage(scope: TenantScope, input: UsageQueryInput): Promise<Pick<UsageAnswer, "unit" | "total">>;
  carryIn(scope: TenantScope, subscriptionId: string, periodStart: Date): Promise<Record<string, string>>;
  /** The wallet the invoice's route and settle stages see (asked only when wallets are wired). */
  wallet(scope: TenantScope, subscriptionId: string, periodStart: Date): Promise<InvoiceWalletState | null>;
}

/** What #compute produced, as the chunk needs it. */
export interface ChunkComputed {
  invoice: Invoice;
  carryOut: Record<string, string>;
  adjustedEventIds: string[];
  /** The plans the period's usage was rated with (their units close with the invoice). */
  plans: PricedPlan[];
}

export interface Draft {
  invoice: Invoice;
  carryOut: Record<string, string>;
}

/** BillingService's side of a chunk: its own pipeline and writes (service.ts). */
export interface ChunkHost {
  database: DatabaseHandle;
  clock: Clock;
  meteringReads: MeteringReadService;
  /** The one-at-a-time reads (the chunk's fallback). */
  live: InvoiceReads;
  /** Whether invoices settle with prepaid wallets (BillingService.wallets is set). */
  walletsWired: boolean;
  compute(
    scope: TenantScope,
    subscriptionId: string,
    period: BillingPeriod,
    billRunId: string | undefined,
    reads: InvoiceReads,
  ): Promise<ChunkComputed>;
  storeDrafts(trx: Kysely<Database>, scope: TenantScope, drafts: readonly Draft[]): Promise<Set<string>>;
  finalizeMany(
    trx: Kysely<Database>,
    scope: TenantScope,
    invoices: readonly Invoice[],
    postpaid: ReadonlySet<string>,
  ): Promise<Invoice[]>;
  closePeriod(scope: TenantScope, invoice: Invoice, plans: PricedPlan[]): Promise<void>;
  finalizeExisting(scope: TenantScope, invoiceId: string): Promise<{ invoiceId: string; created: boolean }>;
  invoicePeriod(
    scope: TenantScope,
    subscriptionId: string,
    period: BillingPeriod,
    options: { billRunId?: string },
  ): Promise<{ invoiceId: string; created: boolean }>;
}

/** Invoices every request (at most one period per subscription); outcomes in request order. */
export async function invoiceChunk(
  host: ChunkHost,
  scope: TenantScope,
  requests: readonly PeriodRequest[],
  options: { billRunId?: string },
): Promise<PeriodOutcome[]> {
  return (await prepareChunk(host, scope, requests, options)).commit();
}

/**
 * The chunk's reads and computations, nothing written: `commit` writes it. A bill run prepares its
 * next chunk while the current one commits (the two overlap on PostgreSQL).
 */
export async function prepareChunk(
  host: ChunkHost,
  scope: TenantScope,
  requests: readonly PeriodRequest[],
  options: { billRunId?: string },
): Promise<PreparedPeriods> {
  if (requests.length === 0) return { commit: async () => [] };
  const outcomes: Array<PeriodOutcome | undefined> = requests.map(() => undefined);
  const reads = await ChunkReads.load(host, scope, requests);

  // A period invoiced before (a resumed run, a draft) is not looked for here: its insert finds it
  // (the unique period key) and it is finalised then, as invoicePeriod does when it loses a race.
  const singles: number[] = [];
  const computing: number[] = [];
  requests.forEach((request, index) => {
    if (reads.needsSinglePath(request.subscriptionId)) singles.push(index);
    else computing.push(index);
  });

  const computed = await Promise.all(
    computing.map(async (index) => {
      const request = requests[index] as PeriodRequest;
      try {
        const value = await host.compute(
          scope,
          request.subscriptionId,
          request.period,
          options.billRunId,
          reads,
        );
        return { index, value };
      } catch {
        // invoicePeriod gives the answer: it finalises an invoiced period first, or fails the same way.
        singles.push(index);
        return undefined;
      }
    }),
  );
  const toWrite: Array<{ index: number; value: ChunkComputed }> = [];
  for (const entry of computed) {
    if (!entry) continue;
    // Adjusting late events takes invoicePeriod's checks and retries (not expected here).
    if (entry.value.adjustedEventIds.length > 0) singles.push(entry.index);
    else toWrite.push(entry);
  }
  return {
    commit: () => commitChunk(host, scope, requests, options, { outcomes, toWrite, singles, reads }),
  };
}

async function commitChunk(
  host: ChunkHost,
  scope: TenantScope,
  requests: readonly PeriodRequest[],
  options: { billRunId?: string },
  prepared: {
    outcomes: Array<PeriodOutcome | undefined>;
    toWrite: Array<{ index: number; value: ChunkComputed }>;
    singles: number[];
    reads: ChunkReads;
  },
): Promise<PeriodOutcome[]> {
  const { outcomes, toWrite, singles, reads } = prepared;
  const finalizing: Array<{ index: number; invoiceId: string }> = [];
  const db = host.database.db;
  if (toWrite.length > 0) {
    try {
      const { inserted, finalized } = await db.transaction().execute(async (trx) => {
        const inserted = await host.storeDrafts(
          trx,
          scope,
          toWrite.map(({ value }) => ({ invoice: value.invoice, carryOut: value.carryOut })),
        );
        const created = toWrite
          .map(({ value }) => value.invoice)
          .filter((invoice) => inserted.has(invoice.id));
        const finalized = await host.finalizeMany(trx, scope, created, reads.postpaid);
        return { inserted, finalized };
      });
      const byId = new Map(finalized.map((invoice) => [invoice.id, invoice]));
      for (const { index, value } of toWrite) {
        const invoice = byId.get(value.invoice.id);
        if (invoice && inserted.has(invoice.id)) {
          await host.closePeriod(scope, invoice, value.plans);
          outcomes[index] = { ok: true, invoiceId: invoice.id, created: true };
          continue;
        }
        // Invoiced before (a resumed run, a draft) or by a concurrent invoicePeriod: finalise what
        // is stored, as invoicePeriod does.
        const request = requests[index] as PeriodRequest;
        const id = await findInvoiceIdForPeriod(db, scope, request.subscriptionId, request.period.start);
        if (id) finalizing.push({ index, invoiceId: id });
        else singles.push(index);
      }
    } catch (error) {
      for (const { index } of toWrite) outcomes[index] = { ok: false, error };
    }
  }

  for (const { index, invoiceId } of finalizing) {
    outcomes[index] = await settled(() => host.finalizeExisting(scope, invoiceId));
  }
  for (const index of singles.sort((a, b) => a - b)) {
    const request = requests[index] as PeriodRequest;
    outcomes[index] = await settled(() =>
      host.invoicePeriod(scope, request.subscriptionId, request.period, options),
    );
  }
  return outcomes.map(
    (outcome) => outcome ?? { ok: false, error: new Error("the chunk left a period without an outcome") },
  );
}

async function settled(task: () => Promise<{ invoiceId: string; created: boolean }>): Promise<PeriodOutcome> {
  try {
    return { ok: true, ...(await task()) };
  } catch (error) {
    return { ok: false, error };
  }
}

interface Loaded {
  subscriptions: Map<string, Subscription>;
  phases: Map<string, StoredPhase[]>;
  customers: Map<string, Customer>;
  carryIns: Map<string, Record<string, string>>;
  /** The chunk's periods (periodKey): carryIns holds every one of them. */
  periods: Set<string>;
  lateCustomers: Set<string>;
  postpaid: Set<string>;
}

interface PendingUsage {
  key: string;
  unitId: string;
  range: { from: Date; to: Date };
  customerIds: Set<string>;
  totals: Promise<Map<string, string>>;
  resolve: (totals: Map<string, string>) => void;
  reject: (error: unknown) => void;
}

/**
 * A chunk's reads: loaded in a few statements before the chunk is computed, then served from
 * memory; anything not loaded is asked of the live reads, so every answer is the one the live
 * reads give. Usage is batched as it is asked for: every computation of the chunk runs at once and
 * reaches its usage read in the same turn, and one grouped query per unit and range answers them
 * all (flushed on setImmediate, after the turn's microtasks).
 */
export class ChunkReads implements InvoiceReads {
  readonly #host: ChunkHost;
  readonly #loaded: Loaded;
  /** Usage totals read so far, by unit, range and customer. */
  readonly #totals = new Map<string, string>();
  readonly #pending = new Map<string, PendingUsage>();
  #flushScheduled = false;

  private constructor(host: ChunkHost, loaded: Loaded) {
    this.#host = host;
    this.#loaded = loaded;
  }

  static async load(
    host: ChunkHost,
    scope: TenantScope,
    requests: readonly PeriodRequest[],
  ): Promise<ChunkReads> {
    const db = host.database.db;
    const refs = requests.map((request) => ({
      subscriptionId: request.subscriptionId,
      periodStart: request.period.start,
    }));
    const subscriptions = await bulk.findSubscriptions(db, scope, [
      ...new Set(refs.map((ref) => ref.subscriptionId)),
    ]);
    // Time applied as the live read applies it: a due subscription is advanced and saved first.
    const now = host.clock.now();
    const due = [...subscriptions.values()].filter((subscription) => isDue(subscription, now));
    await eachLimited(due, host.database.kind === "postgres" ? 4 : 1, async (subscription) => {
      subscriptions.set(subscription.id, await host.live.subscription(scope, subscription.id));
    });
    const ids = [...subscriptions.keys()];
    const customerIds = [...subscriptions.values()].map((subscription) => subscription.customerId);
    // One after the other: the embedded database has a single connection anyway.
    const phases = await listPhasesOf(db, scope, ids);
    const customers = await bulk.findCustomers(db, scope, customerIds);
    const carryIns = await bulk.carryInsFor(db, scope, refs);
    const lateCustomers = await bulk.customersWithLateEvents(db, scope, customerIds);
    const postpaid = host.walletsWired ? await postpaidSubscriptions(db, scope, ids) : new Set(ids);
    const periods = new Set(refs.map((ref) => bulk.periodKey(ref.subscriptionId, ref.periodStart)));
    return new ChunkReads(host, {
      subscriptions,
      phases,
      customers,
      carryIns,
      periods,
      lateCustomers,
      postpaid,
    });
  }

  /** Subscriptions whose offering bills POSTPAID (their wallet state is null; nothing to settle). */
  get postpaid(): ReadonlySet<string> {
    return this.#loaded.postpaid;
  }

  /** Its customer has late events to adjust, or it could not be read: invoicePeriod invoices it. */
  needsSinglePath(subscriptionId: string): boolean {
    const subscription = this.#loaded.subscriptions.get(subscriptionId);
    return !subscription || this.#loaded.lateCustomers.has(subscription.customerId);
  }

  subscription(scope: TenantScope, id: string): Promise<Subscription> {
    const found = this.#loaded.subscriptions.get(id);
    return found ? Promise.resolve(found) : this.#host.live.subscription(scope, id);
  }

  phases(scope: TenantScope, subscriptionId: string): Promise<StoredPhase[]> {
    const found = this.#loaded.phases.get(subscriptionId);
    return found ? Promise.resolve(found) : this.#host.live.phases(scope, subscriptionId);
  }

  customer(scope: TenantScope, id: string): Promise<Customer> {
    const found = this.#loaded.customers.get(id);
    return found ? Promise.resolve(found) : this.#host.live.customer(scope, id);
  }

  pendingAdjustments(scope: TenantScope, subscriptionId: string, before: Date): Promise<PendingLateUsage[]> {
    const subscription = this.#loaded.subscriptions.get(subscriptionId);
    if (subscription && !this.#loaded.lateCustomers.has(subscription.customerId)) return Promise.resolve([]);
    return this.#host.live.pendingAdjustments(scope, subscriptionId, before);
  }

  carryIn(scope: TenantScope, subscriptionId: string, periodStart: Date): Promise<Record<string, string>> {
    const key = bulk.periodKey(subscriptionId, periodStart);
    if (!this.#loaded.periods.has(key)) return this.#host.live.carryIn(scope, subscriptionId, periodStart);
    return Promise.resolve({ ...(this.#loaded.carryIns.get(key) ?? {}) });
  }

  wallet(scope: TenantScope, subscriptionId: string, periodStart: Date): Promise<InvoiceWalletState | null> {
    if (this.#loaded.postpaid.has(subscriptionId)) return Promise.resolve(null);
    return this.#host.live.wallet(scope, subscriptionId, periodStart);
  }

  usage(scope: TenantScope, input: UsageQueryInput): Promise<Pick<UsageAnswer, "unit" | "total">> {
    const unit = this.#host.meteringReads.resolveUnit(scope, input.metricRef);
    const customerId = input.customerId;
    if (!unit || customerId === undefined || input.window !== null || input.groupBy.length > 0) {
      return this.#host.live.usage(scope, input);
    }
    const key = `${unit.id}\u0000${input.range.from.getTime()}\u0000${input.range.to.getTime()}`;
    const known = this.#totals.get(`${key}\u0000${customerId}`);
    if (known !== undefined) return Promise.resolve({ unit, total: known });
    let group = this.#pending.get(key);
    if (!group) {
      let resolve: PendingUsage["resolve"] = () => {};
      let reject: PendingUsage["reject"] = () => {};
      const totals = new Promise<Map<string, string>>((onResolve, onReject) => {
        resolve = onResolve;
        reject = onReject;
      });
      group = { key, unitId: unit.id, range: input.range, customerIds: new Set(), totals, resolve, reject };
      this.#pending.set(key, group);
      this.#scheduleFlush(scope);
    }
    group.customerIds.add(customerId);
    return group.totals.then((totals) => ({ unit, total: totals.get(customerId) ?? "0" }));
  }

  /** After the turn in which the chunk's computations asked: one grouped query per unit and range. */
  #scheduleFlush(scope: TenantScope): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      const groups = [...this.#pending.values()];
      this.#pending.clear();
      void (async () => {
        for (const group of groups) {
          try {
            const { totals } = await this.#host.meteringReads.usageOfCustomers(scope, {
              metricRef: group.unitId,
              customerIds: [...group.customerIds],
              range: group.range,
            });
            for (const [customerId, total] of totals)
              this.#totals.set(`${group.key}\u0000${customerId}`, total);
            group.resolve(totals);
          } catch (error) {
            group.reject(error);
          }
        }
      })();
    });
  }
}

/** The subscriptions whose offering bills POSTPAID: a wallet pays no part of their invoices. */
async function postpaidSubscriptions(
  db: Kysely<Database>,
  scope: TenantScope,
  ids: readonly string[],
): Promise<Set<string>> {
  const found = new Set<string>();
  for (const slice of bulk.slices(ids, 1)) {
    const rows = await db
      .selectFrom("subscriptions")
      .innerJoin("offerings", "offerings.id", "subscriptions.offering_id")
      .select(["subscriptions.id", "offerings.billing_mode"])
      .where("subscriptions.tenant_id", "=", scope.tenantId)
      .where("subscriptions.mode", "=", scope.mode)
      .where("offerings.tenant_id", "=", scope.tenantId)
      .where("offerings.mode", "=", scope.mode)
      .where("subscriptions.id", "in", slice)
      .execute();
    for (const row of rows) if (!paysFromWallet(row.billing_mode)) found.add(row.id);
  }
  return found;
}

/** Runs `task` over `items` with at most `limit` at a time. */
export async function eachLimited<T>(
  items: readonly T[],
  limit: number,
  task: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    for (let index = next++; index < items.length; index = next++) {
      const item = items[index];
      if (item !== undefined) await task(item);
    }
  });
  await Promise.all(lanes);
}
