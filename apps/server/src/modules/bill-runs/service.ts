import { AforoError, newId } from "@aforo/core";
import { type Kysely, sql } from "kysely";
import type { Clock } from "../../clock.ts";
import type { DatabaseHandle } from "../../db/database.ts";
import type { Page, PageRequest } from "../../db/pagination.ts";
import type { Database } from "../../db/schema.ts";
import type { TenantScope } from "../../http/route-config.ts";
import type { JobQueue } from "../../jobs/queue.ts";
import type { PeriodInvoicing } from "../billing/ports.ts";
import { analyzeUsageTables } from "../metering/store/usage.ts";
import type { RatePlanVersionCache } from "../pricing/version-cache.ts";
import type { Period } from "../subscriptions/domain/period.ts";
import { pinnedBefore } from "../subscriptions/domain/phases.ts";
import type { PinnedPlan, Subscription } from "../subscriptions/domain/subscription.ts";
import type { SubscriptionService } from "../subscriptions/service.ts";
import { findSubscription, listPhasesOf } from "../subscriptions/store.ts";
import { type StartedPage, startPage } from "./batch.ts";
import type { ClosedPeriods, PeriodClose } from "./closed-periods.ts";
import {
  type BillRun,
  groupAdjustments,
  isAbandoned,
  type PendingAdjustment,
  periodsToInvoice,
  withInvoiceIds,
} from "./domain.ts";
import * as store from "./store.ts";

export const BILL_RUN_JOB = "bill-runs.run";
export const DAILY_JOB = "bill-runs.daily";
/**
 * Five minutes past every hour (UTC): a subscription's periods end at midnight in its billing time
 * zone, which is some hour UTC (or a half hour: Asia/Kolkata's midnight is billed at 19:05Z). A
 * pass finds only tenants with a period due (`scopesWithDuePeriods`), so most hours do nothing.
 */
export const DAILY_CRON = "5 * * * *";

export interface BillRunOptions {
  /** Tenants with at most this many subscriptions are billed inside the request (201 COMPLETED). */
  inlineLimit?: number;
  /** A RUNNING run without a heartbeat for this long was abandoned (its process died). */
  abandonAfterMs?: number;
  /** Subscriptions read per query (and invoiced per chunk when invoicing offers invoicePeriods). */
  pageSize?: number;
  /** Subscriptions invoiced at once (PostgreSQL only gains from more than one). */
  concurrency?: number;
}

export interface StartInput {
  asOf?: Date | undefined;
  /** auto: inline up to `inlineLimit` subscriptions, else queued; the CLI runs inline. */
  execution?: "auto" | "inline" | "queued";
  onProgress?: ((progress: RunProgress) => void) | undefined;
}

export interface RunProgress {
  subscriptionsTotal: number;
  subscriptionsProcessed: number;
  periodsInvoiced: number;
  invoicesCreated: number;
}

interface RunJobData {
  billRunId: string;
  tenantId: string;
  mode: "live" | "test";
}

/** What the daily job may also do, when billing offers it. */
export interface OverdueMarker {
  markOverdue?: (now: Date) => Promise<unknown>;
}

const HEARTBEAT_EVERY_MS = 5_000;
/** Usage statistics are refreshed before a run at most this often (per process). */
const STATISTICS_EVERY_MS = 10 * 60_000;

function notFound(id: string): AforoError {
  return new AforoError("not-found", `No bill run with id '${id}' exists in this tenant and mode.`);
}

/**
 * Bill runs: invoice every subscription period that ended by `as_of`, exactly once. One RUNNING run
 * per tenant and mode (a unique partial index: a concurrent start is a 409). The run walks the
 * tenant's subscriptions page by page, asks invoicing for each due period (idempotent), records the
 * period as billed (where the next run starts from) and closes it to late usage. Progress and a
 * heartbeat are written as it goes; a run whose heartbeat stops (its process died) is abandoned and
 * the next run, or the job queue's retry of the same run, finishes the remaining periods.
 */
export class BillRunService {
  readonly #database: DatabaseHandle;
  readonly #clock: Clock;
  readonly #subscriptions: SubscriptionService;
  readonly #versions: RatePlanVersionCache;
  /** Billing closes periods it finalises outside bill runs here too. */
  readonly closedPeriods: ClosedPeriods;
  readonly #jobs: JobQueue;
  readonly #inlineLimit: number;
  readonly #abandonAfterMs: number;
  readonly #pageSize: number;
  readonly #concurrency: number;
  #statisticsRefreshedMs = Number.NEGATIVE_INFINITY;
  /** Set once billing exists (context.ts); a run without it fails. */
  invoicing: PeriodInvoicing | undefined;
  overdue: OverdueMarker = {};

  constructor(
    database: DatabaseHandle,
    clock: Clock,
    services: {
      subscriptions: SubscriptionService;
      versions: RatePlanVersionCache;
      closedPeriods: ClosedPeriods;
      jobs: JobQueue;
    },
    options: BillRunOptions = {},
  ) {
    this.#database = database;
    this.#clock = clock;
    this.#subscriptions = services.subscriptions;
    this.#versions = services.versions;
    this.closedPeriods = services.closedPeriods;
    this.#jobs = services.jobs;
    this.#inlineLimit = options.inlineLimit ?? 200;
    this.#abandonAfterMs = options.abandonAfterMs ?? 120_000;
    // A page is one chunk of set-based invoicing: a few statements and one transaction each.
    this.#pageSize = options.pageSize ?? 500;
    this.#concurrency = options.concurrency ?? (database.kind === "postgres" ? 4 : 1);
  }

  get #db(): Kysely<Database> {
    return this.#database.db;
  }

  /** Registers the run and daily workers and the daily schedule on the job queue. */
  async start(): Promise<void> {
    await this.#jobs.work<RunJobData>(BILL_RUN_JOB, async (job) => {
      await this.resume({ tenantId: job.data.tenantId, mode: job.data.mode }, job.data.billRunId);
    });
    await this.#jobs.work(DAILY_JOB, async () => {
      await this.daily();
    });
    await this.#jobs.schedule(DAILY_JOB, DAILY_CRON);
  }

  // ---- Runs -----------------------------------------------------------------------------------------

  async startRun(scope: TenantScope, input: StartInput = {}): Promise<BillRun> {
    const now = this.#clock.now();
    const asOf = input.asOf ?? now;
    if (asOf.getTime() > now.getTime()) {
      throw new AforoError(
        "unprocessable-entity",
        "A bill run cannot invoice periods that have not ended yet.",
        {
          errors: [{ field: "as_of", message: "must not lie in the future" }],
        },
      );
    }
    const run = await this.#claim(scope, asOf, now);
    const execution = input.execution ?? "auto";
    const inline =
      execution === "inline" ||
      (execution === "auto" && (await store.countSubscriptions(this.#db, scope)) <= this.#inlineLimit);
    if (inline) return this.#execute(run, input.onProgress);
    await this.#jobs.send<RunJobData>(
      BILL_RUN_JOB,
      { billRunId: run.id, tenantId: scope.tenantId, mode: scope.mode },
      { singletonKey: run.id },
    );
    return run;
  }

  /** The job's entry point (and its retries): carries a RUNNING run on; anything else is done. */
  async resume(scope: TenantScope, id: string): Promise<BillRun> {
    const run = await store.findRun(this.#db, scope, id);
    if (!run) throw notFound(id);
    return run.status === "RUNNING" ? this.#execute(run) : run;
  }

  async get(scope: TenantScope, id: string): Promise<BillRun> {
    const run = await store.findRun(this.#db, scope, id);
    if (!run) throw notFound(id);
    return run;
  }

  list(scope: TenantScope, page: PageRequest): Promise<Page<BillRun>> {
    return store.listRuns(this.#db, scope, page);
  }

  /** A new RUNNING run, taking over an abandoned one; a live one is a 409. */
  async #claim(scope: TenantScope, asOf: Date, now: Date): Promise<BillRun> {
    const run: BillRun = {
      id: newId("billRun"),
      tenantId: scope.tenantId,
      mode: scope.mode,
      status: "RUNNING",
      asOf,
      subscriptionsTotal: null,
      subscriptionsProcessed: 0,
      periodsInvoiced: 0,
      invoicesCreated: 0,
      invoiceIds: [],
      error: null,
      heartbeatAt: now,
      createdAt: now,
      completedAt: null,
    };
    for (let attempt = 0; attempt < 2; attempt += 1) {
      if (await store.insertRun(this.#db, run)) return run;
      const running = await store.findRunning(this.#db, scope);
      if (running && !isAbandoned(running, now, this.#abandonAfterMs)) {
        throw new AforoError("conflict", "A bill run is already running", {
          extensions: { bill_run_id: running.id },
        });
      }
      if (running) {
        const silentS = Math.round((now.getTime() - running.heartbeatAt.getTime()) / 1000);
        await store.finishRun(
          this.#db,
          running,
          "FAILED",
          now,
          `abandoned: no heartbeat for ${silentS} s; bill run ${run.id} took over`,
        );
      }
    }
    throw new AforoError("conflict", "A bill run is already running");
  }

  #invoicing(): PeriodInvoicing {
    if (!this.invoicing)
      throw new Error("bill runs need invoicing (context.billing), which is not configured");
    return this.invoicing;
  }

  async #execute(run: BillRun, onProgress?: (progress: RunProgress) => void): Promise<BillRun> {
    const scope = { tenantId: run.tenantId, mode: run.mode };
    const progress: store.Progress = {
      subscriptionsProcessed: 0,
      // A resumed run keeps what it created before; already billed periods are skipped now.
      periodsInvoiced: run.periodsInvoiced,
      invoicesCreated: run.invoicesCreated,
      invoiceIds: run.invoiceIds,
      heartbeatAt: this.#clock.now(),
    };
    try {
      progress.subscriptionsTotal = await store.countSubscriptions(this.#db, scope);
      if (!(await store.saveProgress(this.#db, run, progress))) return await this.get(scope, run.id);
      await this.#refreshUsageStatistics();
      let lastSavedMs = Date.now();
      let afterId: string | undefined;
      const invoicing = this.#invoicing();
      const setBased =
        invoicing.invoicePeriods !== undefined || invoicing.prepareInvoicePeriods !== undefined;
      const report = () =>
        onProgress?.({ ...progress, subscriptionsTotal: progress.subscriptionsTotal ?? 0 });
      /** Saves progress; false when another run took this one over (it looked abandoned). */
      const saved = () => {
        progress.heartbeatAt = this.#clock.now();
        lastSavedMs = Date.now();
        return store.saveProgress(this.#db, run, progress);
      };
      // Set-based: each page is one chunk of invoicing (a few statements, one transaction), and
      // the next page is read and computed while this one is written.
      let writing: StartedPage | undefined;
      for (;;) {
        const page = await store.subscriptionsAfter(this.#db, scope, afterId, this.#pageSize);
        afterId = page.at(-1)?.id ?? afterId;
        const through =
          page.length === 0
            ? new Map<string, Date>()
            : await store.billedThrough(
                this.#db,
                scope,
                page.map((subscription) => subscription.id),
              );
        if (setBased) {
          const started =
            page.length === 0
              ? undefined
              : startPage(
                  {
                    db: this.#db,
                    run,
                    invoicing,
                    closedPeriods: this.closedPeriods,
                    closesFor: (scope, entries) => this.#closesFor(scope, entries),
                  },
                  page,
                  through,
                );
          if (writing) {
            await writing.finish(progress, report);
            // Another run took this one over: stop, it finishes the work.
            if (!(await saved())) return await this.get(scope, run.id);
          }
          writing = started;
          if (!started) break;
          continue;
        }
        if (page.length === 0) break;
        await eachLimited(page, this.#concurrency, async (subscription) => {
          const due = periodsToInvoice(subscription, through.get(subscription.id) ?? null, run.asOf);
          for (const period of due) {
            const result = await this.#invoicePeriod(run, subscription, period);
            progress.periodsInvoiced += 1;
            if (result.created) {
              progress.invoicesCreated += 1;
              progress.invoiceIds = withInvoiceIds(progress.invoiceIds, [result.invoiceId]);
            }
          }
          progress.subscriptionsProcessed += 1;
          report();
          if (Date.now() - lastSavedMs >= HEARTBEAT_EVERY_MS) {
            lastSavedMs = Date.now();
            progress.heartbeatAt = this.#clock.now();
            await store.saveProgress(this.#db, run, progress);
          }
        });
        // Another run took this one over (it looked abandoned): stop, it finishes the work.
        if (!(await saved())) return await this.get(scope, run.id);
      }
      return (
        (await store.finishRun(this.#db, run, "COMPLETED", this.#clock.now(), null)) ??
        this.get(scope, run.id)
      );
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      // What was invoiced before the failure stays counted (and billed_periods skips it next time).
      await store
        .saveProgress(this.#db, run, { ...progress, heartbeatAt: this.#clock.now() })
        .catch(() => false);
      return (
        (await store.finishRun(this.#db, run, "FAILED", this.#clock.now(), message)) ??
        this.get(scope, run.id)
      );
    }
  }

  /**
   * Every invoice reads one customer's usage of a period; planned without statistics that read
   * scans every customer's rollups (see analyzeUsageTables). A role not allowed to ANALYZE (it
   * only warns) or a failure leaves the statistics as they are: slower, never wrong.
   */
  async #refreshUsageStatistics(): Promise<void> {
    const nowMs = Date.now();
    if (nowMs - this.#statisticsRefreshedMs < STATISTICS_EVERY_MS) return;
    this.#statisticsRefreshedMs = nowMs;
    await analyzeUsageTables(this.#db).catch(() => undefined);
  }

  async #invoicePeriod(run: BillRun, subscription: Subscription, period: Period) {
    const scope = { tenantId: run.tenantId, mode: run.mode };
    // Closed before its usage is read (ClosedPeriods.closeForInvoicing says why).
    const closes = await this.#closesFor(scope, [{ subscription, period }]);
    const unitIds = [...(closes[0]?.unitIds ?? [])];
    await this.closedPeriods.closeForInvoicing(scope, closes);
    const result = await this.#invoicing().invoicePeriod(scope, subscription.id, period, {
      billRunId: run.id,
    });
    await store.recordBilledPeriod(this.#db, scope, {
      subscriptionId: subscription.id,
      customerId: subscription.customerId,
      periodStart: period.start,
      periodEnd: period.end,
      billableUnitIds: unitIds,
      invoiceId: result.invoiceId,
      billRunId: run.id,
    });
    return result;
  }

  /**
   * What each period's invoice closes to usage: the units billed by the plans in force at the
   * period's end, which are the plans invoicing rates it with (a plan changed since is not them).
   */
  async #closesFor(
    scope: TenantScope,
    entries: ReadonlyArray<{ subscription: Subscription; period: Period }>,
  ): Promise<PeriodClose[]> {
    const phases = await listPhasesOf(
      this.#db,
      scope,
      entries.map(({ subscription }) => subscription.id),
    );
    return entries.map(({ subscription, period }) => ({
      customerId: subscription.customerId,
      period,
      unitIds: this.#unitIds(
        pinnedBefore(phases.get(subscription.id) ?? [], period.end) ?? subscription.items,
      ),
    }));
  }

  /** The billable units the pinned plans bill. */
  #unitIds(items: readonly PinnedPlan[]): string[] {
    const ids = new Set<string>();
    for (const pinned of items) {
      const version = this.#versions.get(pinned.ratePlanId, pinned.version);
      for (const item of version?.definition.items ?? []) {
        if (item.billable_unit_id) ids.add(item.billable_unit_id);
      }
    }
    return [...ids];
  }

  /**
   * What the run's invoices add up to, per currency (from billing's invoices table; empty while
   * billing is not installed).
   */
  async totals(
    scope: TenantScope,
    id: string,
  ): Promise<Array<{ currency: string; invoices: number; totalMinor: bigint }>> {
    try {
      const { rows } = await sql<{
        currency: string;
        invoices: number | string | bigint;
        total: bigint | string | null;
      }>`
        select currency, count(*) as invoices, sum(total) as total from invoices
        where tenant_id = ${scope.tenantId} and mode = ${scope.mode} and bill_run_id = ${id}
        group by currency order by currency
      `.execute(this.#db);
      return rows.map((row) => ({
        currency: row.currency,
        invoices: Number(row.invoices),
        totalMinor: BigInt(row.total ?? 0),
      }));
    } catch {
      return [];
    }
  }

  // ---- The daily schedule ---------------------------------------------------------------------------

  /**
   * Moves subscriptions on (tick), marks overdue invoices (when billing offers it), and runs a bill
   * run for every tenant and mode with a period due. A tenant whose run is already going is skipped.
   */
  async daily(now: Date = this.#clock.now()): Promise<{ runs: BillRun[]; skipped: number }> {
    await this.#subscriptions.tick(now);
    await this.overdue.markOverdue?.(now);
    const runs: BillRun[] = [];
    let skipped = 0;
    for (const scope of await store.scopesWithDuePeriods(this.#db, now)) {
      try {
        runs.push(await this.startRun(scope, { asOf: now, execution: "inline" }));
      } catch (error) {
        if (!(error instanceof AforoError && error.slug === "conflict")) throw error;
        skipped += 1;
      }
    }
    return { runs, skipped };
  }

  // ---- Late events (reconciliation) -----------------------------------------------------------------

  /**
   * Late usage of the subscription not yet adjusted, by closed period and unit. Invoicing calls it
   * for the period it invoices (`before` = that period's start) and adds one USAGE_FEE line per
   * group, "Adjustment for <period>" (adjustmentDescription), the event ids in its trace, priced as
   * rate(period usage + late) − rate(period usage); a negative difference is a credit note.
   */
  async pendingAdjustments(
    scope: TenantScope,
    subscriptionId: string,
    options: { before?: Date; db?: Kysely<Database> } = {},
  ): Promise<PendingAdjustment[]> {
    const db = options.db ?? this.#db;
    // Read in the caller's transaction: on the embedded database a second connection would wait on it.
    const subscription = await findSubscription(db, scope, subscriptionId);
    if (!subscription) {
      throw new AforoError(
        "not-found",
        `No subscription with id '${subscriptionId}' exists in this tenant and mode.`,
      );
    }
    const events = await store.reconciliationEvents(db, scope, subscription);
    return groupAdjustments(subscription, events, options.before);
  }

  /**
   * Records the events as adjusted on `invoiceId`, in the invoice's transaction (pass it as `db`).
   * Returns the ids newly marked; an id already adjusted is left out, so a retried finalisation
   * never bills a late event twice.
   */
  markAdjusted(
    scope: TenantScope,
    eventIds: readonly string[],
    invoiceId: string,
    db: Kysely<Database> = this.#db,
  ): Promise<string[]> {
    return store.markAdjusted(db, scope, eventIds, invoiceId);
  }
}

/** Runs `task` over `items` with at most `limit` at a time. */
async function eachLimited<T>(
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
