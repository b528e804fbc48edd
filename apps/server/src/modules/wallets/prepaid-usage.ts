import type { Clock } from "../../clock.ts";
import type { DatabaseHandle } from "../../db/database.ts";
import type { TenantScope } from "../../http/route-config.ts";
import type { EventRow } from "../metering/writer.ts";
import { subscriptionPeriodAt } from "../subscriptions/domain/lifecycle.ts";
import type { SubscriptionService } from "../subscriptions/service.ts";
import { paysFromWallet } from "./prepaid.ts";
import * as prepaidStore from "./prepaid-store.ts";
import type { MeteredUsageResult, WalletService } from "./service.ts";

/** What prepaid debits need from invoicing: the period's usage charge, rated as the invoice rates it. */
export interface UsageCharges {
  usageCharge(
    scope: TenantScope,
    subscriptionId: string,
    period: { start: Date; end: Date },
  ): Promise<{ amountMinor: bigint }>;
}

interface PendingPeriod {
  scope: TenantScope;
  subscriptionId: string;
  customerId: string;
  periodStart: Date;
  periodEnd: Date;
}

export interface PrepaidUsageOptions {
  /** How long accepted events gather before their periods are debited (one debit per period). */
  gatherMs?: number;
  /** How long a period whose debit failed waits before it is tried again. */
  retryMs?: number;
  /** Periods debited at once. */
  concurrency?: number;
}

/** How long whether a subscription bills through the wallet is remembered (a plan change forgets it). */
const TERMS_CACHE_MS = 60_000;

/**
 * Debits prepaid and hybrid usage from the wallet as it is metered (ADR 0015). Metering tells it
 * of every committed event (`accepted`, memory only: nothing is added to the request path); a
 * moment later, per customer and period, it rates the period's usage from the stored events with
 * invoicing's own stages and asks the wallet to debit the change since the last debit
 * (WalletService.debitMeteredUsage). The durable record is that per-period debited total, kept
 * with the ledger entries, so there is no cursor to lose: at start, every live prepaid
 * subscription's current period (and every period not yet settled) is rated again, which debits
 * exactly what a crash left undebited and nothing else.
 */
export class PrepaidUsage {
  readonly #database: DatabaseHandle;
  readonly #clock: Clock;
  readonly #wallets: WalletService;
  readonly #subscriptions: SubscriptionService;
  readonly #charges: UsageCharges;
  readonly #gatherMs: number;
  readonly #retryMs: number;
  readonly #concurrency: number;
  readonly #pending = new Map<string, PendingPeriod>();
  readonly #billsThroughWallet = new Map<string, { pays: boolean; readAtMs: number }>();
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;
  #failing = false;
  #unsubscribe: (() => void) | undefined;

  constructor(
    database: DatabaseHandle,
    clock: Clock,
    deps: { wallets: WalletService; subscriptions: SubscriptionService; charges: UsageCharges },
    options: PrepaidUsageOptions = {},
  ) {
    this.#database = database;
    this.#clock = clock;
    this.#wallets = deps.wallets;
    this.#subscriptions = deps.subscriptions;
    this.#charges = deps.charges;
    this.#gatherMs = options.gatherMs ?? 20;
    this.#retryMs = options.retryMs ?? 1_000;
    this.#concurrency = options.concurrency ?? (database.kind === "postgres" ? 4 : 1);
  }

  /**
   * Follows subscription changes and re-rates what a previous process may have left undebited
   * (in the background: `idle` waits for it).
   */
  async start(): Promise<void> {
    this.#unsubscribe = this.#subscriptions.onChange((subscription) => {
      this.#billsThroughWallet.delete(subscription.id);
    });
    const now = this.#clock.now();
    for (const found of await prepaidStore.prepaidSubscriptions(this.#database.db)) {
      const scope = { tenantId: found.tenantId, mode: found.mode };
      const subscription = this.#subscriptions.getCached(scope, found.subscriptionId);
      if (!subscription) continue;
      const period = subscriptionPeriodAt(subscription, now);
      this.#add({
        scope,
        subscriptionId: subscription.id,
        customerId: subscription.customerId,
        periodStart: period.start,
        periodEnd: period.end,
      });
    }
    for (const found of await prepaidStore.unsettledPeriods(this.#database.db)) {
      this.#add({
        scope: { tenantId: found.tenantId, mode: found.mode },
        subscriptionId: found.subscriptionId,
        customerId: found.customerId,
        periodStart: found.periodStart,
        periodEnd: found.periodEnd,
      });
    }
    this.#schedule(0);
  }

  /** Work in flight finishes; what is still pending is re-rated by the next start. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#unsubscribe?.();
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }

  /**
   * Metering's accepted-event listener: called after the group commit, before the senders are
   * answered, so it only notes which subscription periods changed.
   */
  accepted(rows: readonly EventRow[]): void {
    if (this.#stopped) return;
    let added = false;
    for (const row of rows) {
      // Uncounted events (filtered, or kept for reconciliation of a closed period) are not usage
      // of an open period: late ones become adjustments on the next invoice, which settles them.
      if (!row.counted) continue;
      const { subscription_id, period_start, period_end } = row.enrichment;
      if (typeof subscription_id !== "string") continue;
      if (typeof period_start !== "string" || typeof period_end !== "string") continue;
      const cached = this.#billsThroughWallet.get(subscription_id);
      if (cached && !cached.pays && Date.now() - cached.readAtMs < TERMS_CACHE_MS) continue;
      this.#add({
        scope: { tenantId: row.tenantId, mode: row.mode },
        subscriptionId: subscription_id,
        customerId: row.customerId,
        periodStart: new Date(period_start),
        periodEnd: new Date(period_end),
      });
      added = true;
    }
    if (added) this.#schedule(this.#gatherMs);
  }

  /** Resolves once nothing is pending nor being debited (tests; shutdown waits on `stop`). */
  async idle(): Promise<void> {
    for (;;) {
      if (this.#running) {
        await this.#running;
        continue;
      }
      if (this.#pending.size === 0 || this.#stopped) return;
      if (this.#failing) throw new Error("prepaid usage debits are failing; they are retried");
      if (!this.#timer) this.#schedule(0);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  #add(period: PendingPeriod): void {
    const key = `${period.scope.tenantId}\u0000${period.scope.mode}\u0000${period.subscriptionId}\u0000${period.periodStart.getTime()}`;
    if (!this.#pending.has(key)) this.#pending.set(key, period);
  }

  #schedule(delayMs: number): void {
    if (this.#stopped || this.#timer || this.#running) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#running = this.#flush().finally(() => {
        this.#running = undefined;
        if (this.#pending.size > 0) this.#schedule(this.#failing ? this.#retryMs : this.#gatherMs);
      });
    }, delayMs);
    this.#timer.unref();
  }

  /** Debits every pending period, a customer's periods one after another (they share a wallet). */
  async #flush(): Promise<void> {
    const byCustomer = new Map<string, [string, PendingPeriod][]>();
    for (const entry of this.#pending) {
      const [, period] = entry;
      const customer = `${period.scope.tenantId}\u0000${period.scope.mode}\u0000${period.customerId}`;
      const list = byCustomer.get(customer) ?? [];
      list.push(entry);
      byCustomer.set(customer, list);
    }
    this.#pending.clear();
    const queue = [...byCustomer.values()];
    let failed = false;
    const worker = async () => {
      for (let next = queue.shift(); next; next = queue.shift()) {
        for (const [key, period] of next) {
          if (this.#stopped) {
            this.#pending.set(key, period);
            continue;
          }
          try {
            await this.#debit(period);
          } catch {
            // Kept for the retry; the debited total makes a retry debit only what is still owed.
            failed = true;
            if (!this.#pending.has(key)) this.#pending.set(key, period);
          }
        }
      }
    };
    await Promise.all(Array.from({ length: this.#concurrency }, worker));
    this.#failing = failed;
  }

  async #debit(period: PendingPeriod): Promise<MeteredUsageResult | undefined> {
    if (!(await this.#paysFromWallet(period.scope, period.subscriptionId))) return undefined;
    const charge = await this.#charges.usageCharge(period.scope, period.subscriptionId, {
      start: period.periodStart,
      end: period.periodEnd,
    });
    return this.#wallets.debitMeteredUsage(period.scope, {
      subscriptionId: period.subscriptionId,
      periodStart: period.periodStart,
      periodEnd: period.periodEnd,
      chargedMinor: charge.amountMinor,
    });
  }

  async #paysFromWallet(scope: TenantScope, subscriptionId: string): Promise<boolean> {
    const nowMs = Date.now(); // a cache age, not business time: the injected clock may stand still
    const cached = this.#billsThroughWallet.get(subscriptionId);
    if (cached && nowMs - cached.readAtMs < TERMS_CACHE_MS) return cached.pays;
    const terms = await prepaidStore.subscriptionTerms(this.#database.db, scope, subscriptionId);
    const pays = terms !== undefined && paysFromWallet(terms.billingMode);
    this.#billsThroughWallet.set(subscriptionId, { pays, readAtMs: nowMs });
    if (this.#billsThroughWallet.size > 100_000) this.#billsThroughWallet.clear();
    return pays;
  }
}
