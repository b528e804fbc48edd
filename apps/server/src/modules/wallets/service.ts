import {
  AforoError,
  type DecimalInput,
  isKnownCurrency,
  newId,
  parseDecimal,
  toMinorUnits,
} from "@aforo/core";
import type { Kysely } from "kysely";
import type { Clock } from "../../clock.ts";
import type { DatabaseHandle } from "../../db/database.ts";
import type { Page, PageRequest } from "../../db/pagination.ts";
import type { Database } from "../../db/schema.ts";
import type { TenantScope } from "../../http/route-config.ts";
import type { InvoiceWalletState, WalletMovement } from "../billing/ports.ts";
import type { CustomerService } from "../customers/service.ts";
import type { EntitlementService } from "../entitlements/service.ts";
import { defaultEscrow } from "../pricing/domain/offering.ts";
import type { PricingService } from "../pricing/service.ts";
import type { Subscription } from "../subscriptions/domain/subscription.ts";
import type { SubscriptionService } from "../subscriptions/service.ts";
import { noWebhooks, type WebhookPublisher } from "../webhooks/publisher.ts";
import {
  type AutoTopUp,
  autoTopUpAfter,
  type Bucket,
  LedgerBatch,
  ledgerProblems,
  type NewEntry,
} from "./domain.ts";
import {
  invoiceDebitKey,
  invoiceRefundKey,
  larger,
  lowBalanceReason,
  meteredDebitOf,
  paysFromWallet,
  refundByBucket,
  spendableOf,
  uncoveredOf,
  usageDebitKey,
} from "./prepaid.ts";
import * as prepaidStore from "./prepaid-store.ts";
import * as store from "./store.ts";

export type { Debit, Hold, LedgerEntry, TopUpRequest, Wallet } from "./store.ts";

/** How often expired credits are written off when nothing else touches the wallet. */
const EXPIRY_INTERVAL_MS = 60_000;
/**
 * How long whether an offering blocks on an empty wallet is remembered: subscription changes
 * (every tick) would otherwise read the offering each time. An escrow edit applies within it.
 */
const OFFERING_CACHE_MS = 60_000;

export interface CreditInput {
  amount: bigint;
  bucket: Bucket;
  expiresAt?: Date | undefined;
  /** A credit granted twice under one key is granted once (initial credits use the subscription id). */
  idempotencyKey?: string | undefined;
}

export interface DebitInput {
  /** The customer's id or external id. */
  customerId: string;
  amount: bigint;
  currency: string;
  idempotencyKey: string;
}

export interface DebitResult {
  debit: store.Debit;
  entries: store.LedgerEntry[];
}

export interface HoldInput {
  amount: bigint;
  idempotencyKey?: string | undefined;
}

/** A subscription period's usage charge, rated from the stored events (prepaid-usage.ts). */
export interface MeteredUsageInput {
  subscriptionId: string;
  periodStart: Date;
  periodEnd: Date;
  /** Whole minor units, rounded as the invoice's usage lines are. */
  chargedMinor: bigint;
}

export interface MeteredUsageResult {
  /** Debited now. */
  debitedMinor: bigint;
  /** Debited for the period so far. */
  totalDebitedMinor: bigint;
  /** Usage the balance could not cover: it stays for the invoice. */
  uncoveredMinor: bigint;
  balanceMinor: bigint;
}

interface Dependencies {
  customers: CustomerService;
  pricing: PricingService;
  subscriptions: SubscriptionService;
  entitlements: EntitlementService;
}

interface Movement {
  trx: Kysely<Database>;
  wallet: store.Wallet;
  batch: LedgerBatch;
  now: Date;
}

function walletNotFound(id: string): AforoError {
  return new AforoError("not-found", `No wallet with id '${id}' exists in this tenant and mode.`);
}

function holdNotFound(id: string): AforoError {
  return new AforoError("not-found", `No hold with id '${id}' exists in this tenant and mode.`);
}

function insufficient(wallet: Pick<store.Wallet, "id" | "currency">, spendable: bigint, amount: bigint) {
  return new AforoError(
    "insufficient-funds",
    `Wallet '${wallet.id}' can spend ${spendable} ${wallet.currency} minor units; ${amount} were asked for.`,
    {
      errors: [{ field: "amount", message: `exceeds the spendable balance (${spendable})` }],
      extensions: { balance: Number(spendable), amount: Number(amount) },
    },
  );
}

function checkCurrency(currency: string): string {
  if (!isKnownCurrency(currency)) {
    throw new AforoError("unknown-currency", `'${currency}' is not a known ISO 4217 currency.`, {
      errors: [{ field: "currency", message: "is not a known ISO 4217 currency" }],
    });
  }
  return currency;
}

/**
 * Wallets: one per customer and currency, a double-entry ledger (domain.ts). Every movement runs
 * in one transaction that locks the wallet row (SELECT … FOR UPDATE), so concurrent debits of one
 * wallet serialise and never overdraw; the cached totals are rewritten in that same transaction.
 * After the commit, a prepaid wallet that became empty (or funded again) tells the edge.
 */
export class WalletService {
  readonly #database: DatabaseHandle;
  readonly #clock: Clock;
  readonly #deps: Dependencies;
  /** Escrow syncs per customer run one after another, so a stale answer never lands last. */
  readonly #escrowQueue = new Map<string, Promise<void>>();
  readonly #blockingOfferings = new Map<string, { blocks: boolean; readAtMs: number }>();
  #expiring: Promise<unknown> | undefined;
  /** Announces wallet events (the context wires the outbox). */
  webhooks: WebhookPublisher = noWebhooks;

  constructor(database: DatabaseHandle, clock: Clock, deps: Dependencies) {
    this.#database = database;
    this.#clock = clock;
    this.#deps = deps;
  }

  get #db(): Kysely<Database> {
    return this.#database.db;
  }

  /**
   * Tells the edge which prepaid customers are blocked (its memory starts empty), follows
   * subscription changes, and writes off expired credits every minute. Returns the stop function.
   */
  async start(): Promise<() => Promise<void>> {
    const unsubscribe = this.#deps.subscriptions.onChange((subscription) => {
      void this.syncEscrow(subscription, subscription.customerId).catch(() => undefined);
    });
    for (const customer of await store.prepaidCustomers(this.#db)) {
      await this.syncEscrow({ tenantId: customer.tenantId, mode: customer.mode }, customer.customerId);
    }
    const timer = setInterval(() => {
      if (this.#expiring) return;
      this.#expiring = this.expire()
        .catch(() => undefined) // the next tick retries
        .finally(() => {
          this.#expiring = undefined;
        });
    }, EXPIRY_INTERVAL_MS);
    timer.unref();
    return async () => {
      clearInterval(timer);
      unsubscribe();
      await this.#expiring;
      await Promise.all(this.#escrowQueue.values());
    };
  }

  // ---- Wallets ------------------------------------------------------------------------------------

  /** The customer's wallet in that currency, created if it does not exist yet. */
  async create(
    scope: TenantScope,
    customerRef: string,
    currency: string,
  ): Promise<{ wallet: store.Wallet; created: boolean }> {
    const customer = await this.#deps.customers.get(scope, customerRef);
    return this.#ensure(scope, customer.id, checkCurrency(currency));
  }

  async #ensure(
    scope: TenantScope,
    customerId: string,
    currency: string,
  ): Promise<{ wallet: store.Wallet; created: boolean }> {
    const existing = await store.findWalletFor(this.#db, scope, customerId, currency);
    if (existing) return { wallet: existing, created: false };
    const now = this.#clock.now();
    const created = await store.insertWallet(this.#db, scope, {
      id: newId("wallet"),
      customerId,
      currency,
      now,
    });
    const wallet = await store.findWalletFor(this.#db, scope, customerId, currency);
    if (!wallet) throw new Error("a wallet just inserted must be found");
    return { wallet, created };
  }

  async list(scope: TenantScope, customerRef: string): Promise<store.Wallet[]> {
    const customer = await this.#deps.customers.get(scope, customerRef);
    const wallets = await store.listWallets(this.#db, scope, customer.id);
    return Promise.all(wallets.map((wallet) => this.#current(scope, wallet)));
  }

  async get(scope: TenantScope, id: string): Promise<store.Wallet> {
    const wallet = await store.findWallet(this.#db, scope, id);
    if (!wallet) throw walletNotFound(id);
    return this.#current(scope, wallet);
  }

  /** Reads write off what expired since the last movement, so a balance never shows dead credit. */
  async #current(scope: TenantScope, wallet: store.Wallet): Promise<store.Wallet> {
    const now = this.#clock.now();
    const lots = await store.openLots(this.#db, wallet.id);
    if (!lots.some((lot) => lot.expiresAt !== null && lot.expiresAt <= now)) return wallet;
    return (await this.#move(scope, wallet.id, async () => undefined)).wallet;
  }

  async ledger(scope: TenantScope, walletId: string, page: PageRequest): Promise<Page<store.LedgerEntry>> {
    await this.get(scope, walletId);
    return store.listEntries(this.#db, scope, walletId, page);
  }

  async topUpRequests(
    scope: TenantScope,
    walletId: string,
    page: PageRequest,
  ): Promise<Page<store.TopUpRequest>> {
    await this.get(scope, walletId);
    return store.listTopUpRequests(this.#db, scope, walletId, page);
  }

  async setAutoTopUp(scope: TenantScope, walletId: string, config: AutoTopUp): Promise<store.Wallet> {
    if (config.amount <= 0n || config.threshold < 0n) {
      throw new AforoError(
        "unprocessable-entity",
        "An auto top-up needs a positive amount and a threshold of 0 or more.",
        {
          errors: [{ field: config.amount <= 0n ? "amount" : "threshold", message: "out of range" }],
        },
      );
    }
    await this.#db.transaction().execute(async (trx) => {
      const wallet = await store.lockWallet(trx, scope, walletId);
      if (!wallet) throw walletNotFound(walletId);
      await store.updateAutoTopUp(trx, wallet.id, config, this.#clock.now());
    });
    return this.get(scope, walletId);
  }

  // ---- Movements ----------------------------------------------------------------------------------

  async credit(scope: TenantScope, walletId: string, input: CreditInput): Promise<store.LedgerEntry> {
    const now = this.#clock.now();
    if (input.expiresAt && input.expiresAt <= now) {
      throw new AforoError("unprocessable-entity", "A credit cannot expire before it is granted.", {
        errors: [{ field: "expires_at", message: "must lie in the future" }],
      });
    }
    const { value } = await this.#move(scope, walletId, async ({ trx, wallet, batch }) => {
      if (input.idempotencyKey !== undefined) {
        const [granted] = await store.entriesWhere(trx, wallet.id, { creditKey: input.idempotencyKey });
        if (granted) return granted.id;
      }
      const entry = batch.credit({
        id: newId("walletLot"),
        bucket: input.bucket,
        amount: input.amount,
        remaining: input.amount,
        expiresAt: input.expiresAt ?? null,
        createdAt: now,
      });
      entry.idempotencyKey = input.idempotencyKey ?? null;
      return entry.id;
    });
    return this.#entry(walletId, value);
  }

  /** A WATERFALL debit by customer and currency; the same key replays the first debit. */
  async debit(scope: TenantScope, input: DebitInput): Promise<DebitResult> {
    const currency = checkCurrency(input.currency);
    const customer = await this.#deps.customers.get(scope, input.customerId).catch((error: unknown) => {
      if (error instanceof AforoError && error.slug === "not-found") {
        throw new AforoError(
          "unknown-customer",
          `No customer '${input.customerId}' exists in this tenant and mode.`,
          {
            errors: [{ field: "customer_id", message: "no such customer" }],
          },
        );
      }
      throw error;
    });
    const request = { ...input, customerId: customer.id, currency };
    const earlier = await this.#replay(this.#db, scope, request);
    if (earlier) return earlier;
    const wallet = await store.findWalletFor(this.#db, scope, customer.id, currency);
    if (!wallet) throw insufficient({ id: `(none in ${currency})`, currency }, 0n, input.amount);
    const { value } = await this.#move(scope, wallet.id, async ({ trx, wallet: locked, batch, now }) => {
      // A debit with this key may have committed while this one waited for the lock.
      const raced = await this.#replay(trx, scope, request);
      if (raced) return raced.debit.id;
      const spendable = batch.totals.balance;
      const entries = batch.debit(input.amount, now);
      if (!entries) throw insufficient(locked, spendable, input.amount);
      const debit: store.Debit = {
        id: newId("walletDebit"),
        walletId: locked.id,
        customerId: customer.id,
        currency,
        amount: input.amount,
        idempotencyKey: input.idempotencyKey,
        createdAt: now,
      };
      markEntries(entries, { idempotencyKey: input.idempotencyKey, debitId: debit.id });
      await store.insertDebit(trx, scope, debit);
      return debit.id;
    });
    const result = await this.#replay(this.#db, scope, request);
    if (!result || result.debit.id !== value)
      throw new Error(`debit ${value} must be readable once committed`);
    return result;
  }

  /** The earlier debit under this key, or a 409 when the key was used for another debit. */
  async #replay(
    db: Kysely<Database>,
    scope: TenantScope,
    request: DebitInput,
  ): Promise<DebitResult | undefined> {
    const debit = await store.findDebitByKey(db, scope, request.idempotencyKey);
    if (!debit) return undefined;
    if (
      debit.amount !== request.amount ||
      debit.customerId !== request.customerId ||
      debit.currency !== request.currency
    ) {
      throw new AforoError(
        "idempotency-key-reused",
        `Idempotency key '${request.idempotencyKey}' was used for a debit of ${debit.amount} ${debit.currency} from customer '${debit.customerId}'.`,
      );
    }
    return { debit, entries: await store.entriesWhere(db, debit.walletId, { debitId: debit.id }) };
  }

  // ---- Holds --------------------------------------------------------------------------------------

  async hold(scope: TenantScope, walletId: string, input: HoldInput): Promise<store.Hold> {
    const { value } = await this.#move(scope, walletId, async ({ trx, wallet, batch, now }) => {
      const key = input.idempotencyKey;
      if (key !== undefined) {
        const earlier = await store.findHoldByKey(trx, wallet.id, key);
        if (earlier && earlier.amount !== input.amount) {
          throw new AforoError(
            "idempotency-key-reused",
            `Idempotency key '${key}' was used for a hold of ${earlier.amount}.`,
          );
        }
        if (earlier) return earlier.id;
      }
      const id = newId("hold");
      const spendable = batch.totals.balance;
      const held = batch.hold(id, input.amount, now);
      if (!held) throw insufficient(wallet, spendable, input.amount);
      markEntries(held.entries, { idempotencyKey: key ?? id });
      await store.insertHold(trx, {
        id,
        tenantId: scope.tenantId,
        mode: scope.mode,
        walletId: wallet.id,
        amount: input.amount,
        committedAmount: null,
        status: "HELD",
        idempotencyKey: key ?? id,
        allocations: held.allocations,
        createdAt: now,
        updatedAt: now,
      });
      return id;
    });
    return this.getHold(scope, value);
  }

  async getHold(scope: TenantScope, id: string): Promise<store.Hold> {
    const hold = await store.findHold(this.#db, scope, id);
    if (!hold) throw holdNotFound(id);
    return hold;
  }

  /** Debits `amount` (all of it by default) of what the hold reserved and gives the rest back. */
  async commitHold(scope: TenantScope, id: string, amount?: bigint): Promise<store.Hold> {
    return this.#settle(scope, id, "COMMITTED", amount);
  }

  async releaseHold(scope: TenantScope, id: string): Promise<store.Hold> {
    return this.#settle(scope, id, "RELEASED", 0n);
  }

  async #settle(
    scope: TenantScope,
    id: string,
    status: "COMMITTED" | "RELEASED",
    amount: bigint | undefined,
  ): Promise<store.Hold> {
    const found = await this.getHold(scope, id);
    await this.#move(scope, found.walletId, async ({ trx, batch, now }) => {
      const hold = await store.findHold(trx, scope, id);
      if (!hold) throw holdNotFound(id);
      if (hold.status !== "HELD") {
        throw new AforoError(
          "invalid-transition",
          `Hold '${id}' is ${hold.status}; only a HELD hold can be ${status}.`,
        );
      }
      const committed = amount ?? hold.amount;
      if (committed > hold.amount) {
        throw new AforoError(
          "unprocessable-entity",
          `Hold '${id}' reserved ${hold.amount}; it cannot commit ${committed}.`,
          {
            errors: [{ field: "amount", message: `exceeds the held amount (${hold.amount})` }],
          },
        );
      }
      batch.include(
        await store.lotsById(
          trx,
          hold.walletId,
          hold.allocations.map((allocation) => allocation.lotId),
        ),
      );
      const entries = batch.settleHold(id, hold.allocations, committed);
      markEntries(entries, { idempotencyKey: hold.idempotencyKey });
      await store.settleHold(trx, id, status, status === "COMMITTED" ? committed : null, now);
    });
    return this.getHold(scope, id);
  }

  // ---- Expiry -------------------------------------------------------------------------------------

  /** Writes EXPIRY entries for every lot past its expiry (breakage). Idempotent; returns the wallets touched. */
  async expire(now: Date = this.#clock.now()): Promise<number> {
    let touched = 0;
    for (const wallet of await store.walletsWithDueLots(this.#db, now)) {
      await this.#move(
        { tenantId: wallet.tenantId, mode: wallet.mode },
        wallet.id,
        async () => undefined,
        now,
      );
      touched += 1;
    }
    return touched;
  }

  // ---- Initial credits and prepaid escrow ---------------------------------------------------------

  /**
   * Grants a decimal amount (an offering's `initial_credits`) as PROMOTIONAL credit, once per key:
   * subscriptions call it with the subscription id, so a retried creation never grants twice.
   */
  async grantInitialCredits(
    scope: TenantScope,
    customerId: string,
    currency: string,
    amountDecimal: DecimalInput,
    idempotencyKey: string,
  ): Promise<store.LedgerEntry | undefined> {
    const amount = toMinorUnits(parseDecimal(amountDecimal), checkCurrency(currency), "down");
    if (amount <= 0n) return undefined;
    const { wallet } = await this.#ensure(scope, customerId, currency);
    return this.credit(scope, wallet.id, { amount, bucket: "PROMOTIONAL", idempotencyKey });
  }

  /** After a subscription is created: its offering's initial credits, then whether usage is blocked. */
  async subscriptionCreated(scope: TenantScope, subscription: Subscription): Promise<void> {
    const offering = await this.#deps.pricing.getOffering(scope, subscription.offeringId);
    if (offering.initialCredits !== null) {
      await this.grantInitialCredits(
        scope,
        subscription.customerId,
        offering.currency ?? subscription.currency,
        offering.initialCredits,
        subscription.id,
      );
    }
    await this.syncEscrow(scope, subscription.customerId);
  }

  /**
   * Tells the edge whether the customer is blocked: a subscription that has not ended on an
   * offering whose escrow says BLOCK (PREPAID ones do by default), and nothing spendable in the
   * subscription's currency.
   */
  syncEscrow(scope: TenantScope, customerId: string): Promise<void> {
    const key = `${scope.tenantId}\u0000${scope.mode}\u0000${customerId}`;
    const previous = this.#escrowQueue.get(key) ?? Promise.resolve();
    const next = previous.then(() => this.#syncEscrowNow(scope, customerId)).catch(() => undefined);
    this.#escrowQueue.set(key, next);
    void next.finally(() => {
      if (this.#escrowQueue.get(key) === next) this.#escrowQueue.delete(key);
    });
    return next;
  }

  async #syncEscrowNow(scope: TenantScope, customerId: string): Promise<void> {
    const subscriptions = this.#deps.subscriptions
      .listForCustomerCached(scope, customerId)
      .filter((subscription) => subscription.status !== "EXPIRED" && subscription.status !== "CANCELLED");
    let empty = false;
    for (const subscription of subscriptions) {
      if (!(await this.#blocksWhenEmpty(scope, subscription.offeringId))) continue;
      const wallet = await store.findWalletFor(this.#db, scope, customerId, subscription.currency);
      if (!wallet || wallet.balance <= 0n) empty = true;
    }
    this.#deps.entitlements.setWalletEmpty(scope, customerId, empty);
  }

  async #blocksWhenEmpty(scope: TenantScope, offeringId: string): Promise<boolean> {
    const nowMs = Date.now(); // a cache age, not business time: the injected clock may stand still
    const cached = this.#blockingOfferings.get(offeringId);
    if (cached && nowMs - cached.readAtMs < OFFERING_CACHE_MS) return cached.blocks;
    const offering = await this.#deps.pricing.getOffering(scope, offeringId).catch(() => undefined);
    if (!offering) return false;
    const escrow = offering.escrow ?? defaultEscrow(offering.billingMode);
    const blocks = escrow?.on_empty === "BLOCK";
    this.#blockingOfferings.set(offeringId, { blocks, readAtMs: nowMs });
    return blocks;
  }

  // ---- Prepaid and hybrid usage (ADR 0015) --------------------------------------------------------

  /**
   * Pays a subscription period's usage from the wallet as it is metered. `chargedMinor` is the
   * period's usage charge rated from the stored events; the wallet is debited (waterfall) what of
   * it was not debited before, as far as the balance goes: the rest stays for the invoice. Under
   * the wallet's lock with the period's row, so a replay, a restart or another process never
   * debits an amount twice (the debit's key is the period's running total). Nothing happens once
   * the period's invoice has settled it, for a POSTPAID offering, or without a wallet in the
   * subscription's currency. An ALERT escrow announces `wallet.low_balance` when the wallet runs
   * dry (a BLOCK escrow makes the edge refuse instead, as every movement to zero does).
   */
  async debitMeteredUsage(
    scope: TenantScope,
    input: MeteredUsageInput,
  ): Promise<MeteredUsageResult | undefined> {
    const terms = await prepaidStore.subscriptionTerms(this.#db, scope, input.subscriptionId);
    if (!terms || !paysFromWallet(terms.billingMode)) return undefined;
    const found = await store.findWalletFor(this.#db, scope, terms.customerId, terms.currency);
    if (!found) return undefined;
    const escrow = terms.escrow ?? defaultEscrow(terms.billingMode === "PREPAID" ? "PREPAID" : "HYBRID");
    const key: prepaidStore.PrepaidPeriodKey = {
      subscriptionId: input.subscriptionId,
      periodStart: input.periodStart,
      periodEnd: input.periodEnd,
      customerId: terms.customerId,
      currency: terms.currency,
    };
    const { value } = await this.#move(scope, found.id, async ({ trx, wallet, batch, now }) => {
      const period = await prepaidStore.lockPeriod(trx, scope, key, wallet.id, now);
      const balanceBefore = batch.totals.balance;
      if (period.invoiceId !== null) {
        return {
          debitedMinor: 0n,
          totalDebitedMinor: period.debitedMinor,
          uncoveredMinor: 0n,
          balanceMinor: balanceBefore,
        };
      }
      const take = meteredDebitOf({
        chargedMinor: input.chargedMinor,
        debitedMinor: period.debitedMinor,
        spendableMinor: balanceBefore,
      });
      // A charge rated earlier by a slower worker may arrive after a later one: keep the larger.
      const usageMinor = larger(input.chargedMinor, period.usageMinor);
      const debited: { bucket: Bucket; amount: bigint }[] = [];
      if (take > 0n) {
        const entries = batch.debit(take, now);
        if (!entries) throw new Error("a metered debit never exceeds the spendable balance");
        const debit: store.Debit = {
          id: newId("walletDebit"),
          walletId: wallet.id,
          customerId: terms.customerId,
          currency: terms.currency,
          amount: take,
          idempotencyKey: usageDebitKey(input.subscriptionId, input.periodStart, period.debitedMinor + take),
          createdAt: now,
        };
        markEntries(entries, { idempotencyKey: debit.idempotencyKey, debitId: debit.id });
        // The key is unique per tenant and mode: a second debit of the same running total fails.
        await store.insertDebit(trx, scope, debit);
        for (const entry of entries) debited.push({ bucket: entry.bucket, amount: -entry.amount });
      }
      if (take > 0n || usageMinor !== period.usageMinor || period.walletId !== wallet.id) {
        await prepaidStore.recordDebit(trx, scope, period, { usageMinor, walletId: wallet.id, debited, now });
      }
      const totalDebitedMinor = period.debitedMinor + take;
      const balanceAfter = batch.totals.balance;
      const uncoveredBefore = uncoveredOf(period);
      const uncoveredAfter = uncoveredOf({ usageMinor, debitedMinor: totalDebitedMinor });
      const thresholdMinor = escrow
        ? toMinorUnits(parseDecimal(escrow.low_balance_threshold), terms.currency, "down")
        : 0n;
      const reason =
        escrow &&
        lowBalanceReason({
          onEmpty: escrow.on_empty,
          thresholdMinor,
          balanceBefore,
          balanceAfter,
          uncoveredBefore,
          uncoveredAfter,
        });
      if (escrow && reason) {
        await this.webhooks.publish(trx, scope, "wallet.low_balance", {
          wallet_id: wallet.id,
          customer_id: terms.customerId,
          subscription_id: input.subscriptionId,
          offering_id: terms.offeringId,
          currency: terms.currency,
          balance: Number(balanceAfter),
          threshold: Number(thresholdMinor),
          on_empty: escrow.on_empty,
          reason,
          uncovered_usage: Number(uncoveredAfter),
        });
      }
      return {
        debitedMinor: take,
        totalDebitedMinor,
        uncoveredMinor: uncoveredAfter,
        balanceMinor: balanceAfter,
      };
    });
    return value;
  }

  /**
   * What the wallet brings to the invoice of the subscription's period: the usage it already paid
   * as metered and what it can spend now. null when the offering does not bill through the wallet.
   */
  async invoiceWallet(
    scope: TenantScope,
    subscriptionId: string,
    periodStart: Date,
  ): Promise<InvoiceWalletState | null> {
    const terms = await prepaidStore.subscriptionTerms(this.#db, scope, subscriptionId);
    if (!terms || !paysFromWallet(terms.billingMode)) return null;
    const period = await prepaidStore.findPeriod(this.#db, scope, subscriptionId, periodStart);
    const wallet = await store.findWalletFor(this.#db, scope, terms.customerId, terms.currency);
    const availableMinor = wallet
      ? spendableOf(await store.openLots(this.#db, wallet.id), this.#clock.now())
      : 0n;
    return { meteredMinor: period?.debitedMinor ?? 0n, availableMinor };
  }

  /**
   * The wallet's part of an invoice, in the invoice's finalising transaction `trx`: locks the
   * wallet (the order every movement takes) and the period's metered debits, lets `decide` (the
   * invoice's pure route and settle stages) choose the movement, debits the balance (waterfall,
   * key `invoice:<id>`) or gives back metered excess (reverse waterfall), and closes the period to
   * metered debits. The caller syncs the escrow after its commit. null for POSTPAID offerings.
   */
  async settleInvoice(
    trx: Kysely<Database>,
    scope: TenantScope,
    invoice: { id: string; subscriptionId: string; periodStart: Date; periodEnd: Date },
    decide: (state: InvoiceWalletState) => WalletMovement,
  ): Promise<InvoiceWalletState | null> {
    const terms = await prepaidStore.subscriptionTerms(trx, scope, invoice.subscriptionId);
    if (!terms || !paysFromWallet(terms.billingMode)) return null;
    const key: prepaidStore.PrepaidPeriodKey = {
      subscriptionId: invoice.subscriptionId,
      periodStart: invoice.periodStart,
      periodEnd: invoice.periodEnd,
      customerId: terms.customerId,
      currency: terms.currency,
    };
    const found = await store.findWalletFor(trx, scope, terms.customerId, terms.currency);
    const settle = async (
      period: prepaidStore.PrepaidPeriod,
      availableMinor: bigint,
      move: (movement: WalletMovement) => Promise<void>,
      now: Date,
    ): Promise<InvoiceWalletState> => {
      if (period.invoiceId !== null) {
        throw new Error(`the period of invoice ${invoice.id} was settled by invoice ${period.invoiceId}`);
      }
      const state = { meteredMinor: period.debitedMinor, availableMinor };
      const movement = decide(state);
      if (movement.debitMinor > availableMinor || movement.refundMinor > period.debitedMinor) {
        throw new Error("a settlement moves at most what the wallet has and what was metered");
      }
      await move(movement);
      await prepaidStore.markSettled(trx, scope, period, invoice.id, now);
      return state;
    };
    if (!found) {
      const now = this.#clock.now();
      const period = await prepaidStore.lockPeriod(trx, scope, key, null, now);
      return settle(period, 0n, async () => undefined, now);
    }
    const { value } = await this.#move(
      scope,
      found.id,
      async ({ trx: locked, wallet, batch, now }) => {
        const period = await prepaidStore.lockPeriod(locked, scope, key, wallet.id, now);
        return settle(
          period,
          batch.totals.balance,
          async ({ debitMinor, refundMinor }) => {
            if (debitMinor > 0n) {
              const entries = batch.debit(debitMinor, now);
              if (!entries) throw new Error("a settlement never debits more than the balance");
              const debit: store.Debit = {
                id: newId("walletDebit"),
                walletId: wallet.id,
                customerId: terms.customerId,
                currency: terms.currency,
                amount: debitMinor,
                idempotencyKey: invoiceDebitKey(invoice.id),
                createdAt: now,
              };
              markEntries(entries, { idempotencyKey: debit.idempotencyKey, debitId: debit.id });
              await store.insertDebit(locked, scope, debit);
            }
            for (const part of refundMinor > 0n ? refundByBucket(period.byBucket, refundMinor) : []) {
              const entry = batch.credit({
                id: newId("walletLot"),
                bucket: part.bucket,
                amount: part.amount,
                remaining: part.amount,
                expiresAt: null,
                createdAt: now,
              });
              entry.idempotencyKey = invoiceRefundKey(invoice.id, part.bucket);
            }
          },
          now,
        );
      },
      undefined,
      trx,
    );
    return value;
  }

  // ---- Verification -------------------------------------------------------------------------------

  /** Every disagreement between the wallet's cached totals, its entries, lots and holds (none: []). */
  async verify(scope: TenantScope, walletId: string): Promise<string[]> {
    const wallet = await store.findWallet(this.#db, scope, walletId);
    if (!wallet) throw walletNotFound(walletId);
    const entries = await store.entriesInOrder(this.#db, walletId);
    const lots = await store.allLots(this.#db, walletId);
    return ledgerProblems(entries, wallet, await store.openHoldsTotal(this.#db, walletId), lots);
  }

  // ---- The one way money moves --------------------------------------------------------------------

  /**
   * Locks the wallet, writes off what has expired, runs `operate`, writes off what a released hold
   * gave back to an expired lot, records an auto top-up request on a downward crossing, and
   * stores it all in one transaction. Then, if the balance reached or left zero, tells the edge.
   */
  async #move<T>(
    scope: TenantScope,
    walletId: string,
    operate: (movement: Movement) => Promise<T>,
    at?: Date,
    /** The caller's transaction (an invoice's finalisation); it syncs the escrow after its commit. */
    outer?: Kysely<Database>,
  ): Promise<{ value: T; wallet: store.Wallet }> {
    const now = at ?? this.#clock.now();
    const inTransaction = <R>(work: (trx: Kysely<Database>) => Promise<R>): Promise<R> =>
      outer ? work(outer) : this.#db.transaction().execute(work);
    const outcome = await inTransaction(async (trx) => {
      const wallet = await store.lockWallet(trx, scope, walletId);
      if (!wallet) throw walletNotFound(walletId);
      const batch = new LedgerBatch(wallet, await store.openLots(trx, wallet.id), () => newId("ledgerEntry"));
      batch.expire(now);
      const value = await operate({ trx, wallet, batch, now });
      batch.expire(now);
      const totals = batch.totals;
      const topUp = autoTopUpAfter(
        wallet.autoTopUp,
        wallet.autoTopUpArmed,
        totals.balance,
        totals.balance < wallet.balance,
      );
      if (topUp.request && wallet.autoTopUp) {
        await store.insertTopUpRequest(trx, scope, {
          id: newId("topUpRequest"),
          walletId: wallet.id,
          amount: wallet.autoTopUp.amount,
          bucket: wallet.autoTopUp.bucket,
          status: "PENDING",
          balanceAtTrigger: totals.balance,
          createdAt: now,
        });
      }
      await store.saveBatch(trx, scope, wallet, batch, now, {
        autoTopUpArmed: topUp.armed === wallet.autoTopUpArmed ? undefined : topUp.armed,
      });
      // wallet.low_balance once per downward crossing of the wallet's threshold (minor units).
      const threshold = wallet.autoTopUp?.threshold;
      if (threshold !== undefined && wallet.balance >= threshold && totals.balance < threshold) {
        await this.webhooks.publish(trx, scope, "wallet.low_balance", {
          wallet_id: wallet.id,
          customer_id: wallet.customerId,
          currency: wallet.currency,
          balance: Number(totals.balance),
          threshold: Number(threshold),
          reason: "below_threshold",
          auto_top_up: wallet.autoTopUp?.enabled ?? false,
        });
      }
      const after: store.Wallet = { ...wallet, ...totals, autoTopUpArmed: topUp.armed, updatedAt: now };
      return { value, before: wallet, after };
    });
    if (!outer && outcome.before.balance > 0n !== outcome.after.balance > 0n) {
      await this.syncEscrow(scope, outcome.after.customerId);
    }
    return { value: outcome.value, wallet: outcome.after };
  }

  async #entry(walletId: string, entryId: string): Promise<store.LedgerEntry> {
    const entry = await store.findEntry(this.#db, walletId, entryId);
    if (!entry) throw new Error(`entry ${entryId} must be readable once committed`);
    return entry;
  }
}

function markEntries(entries: NewEntry[], marks: { idempotencyKey?: string; debitId?: string }): void {
  for (const entry of entries) {
    if (marks.idempotencyKey !== undefined) entry.idempotencyKey = marks.idempotencyKey;
    if (marks.debitId !== undefined) entry.debitId = marks.debitId;
  }
}
