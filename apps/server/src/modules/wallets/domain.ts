/**
 * Wallets as a double-entry ledger, pure. Every movement is an immutable entry; a wallet's balance
 * is the sum of its entries' amounts. Credits become lots (what is left of each credit, by bucket
 * and expiry); debits consume lots in the waterfall order PROMOTIONAL → BONUS → CASH, and within
 * a bucket the soonest-expiring lot first. A hold takes its amount out of the lots at once (a
 * negative HOLD entry) and keeps the allocation: a commit gives the hold back (RELEASE) and debits
 * the committed part (DEBIT) from the very lots it reserved; a release only gives it back.
 * So `balance` is what can be spent now, `held` is what open holds reserved, and the buckets add
 * up to the balance. Expiry writes EXPIRY entries for what is left of lots past their expiry
 * (breakage), never touching money a hold reserved until the hold gives it back.
 */

export const buckets = ["PROMOTIONAL", "BONUS", "CASH"] as const;
export type Bucket = (typeof buckets)[number];
export const entryTypes = ["CREDIT", "DEBIT", "HOLD", "RELEASE", "EXPIRY"] as const;
export type EntryType = (typeof entryTypes)[number];
export type HoldStatus = "HELD" | "COMMITTED" | "RELEASED";

export type BucketBalances = Record<Bucket, bigint>;

export interface Lot {
  id: string;
  bucket: Bucket;
  amount: bigint;
  remaining: bigint;
  expiresAt: Date | null;
  createdAt: Date;
}

export interface Allocation {
  lotId: string;
  bucket: Bucket;
  amount: bigint;
}

/** The cached totals of a wallet; the ledger is the truth they are checked against. */
export interface LedgerTotals {
  balance: bigint;
  held: bigint;
  buckets: BucketBalances;
  /** How many entries the wallet has: the next entry's sequence. */
  entryCount: bigint;
}

export interface NewEntry {
  id: string;
  sequence: bigint;
  type: EntryType;
  bucket: Bucket;
  /** Signed: what the entry adds to the balance. */
  amount: bigint;
  balanceAfter: bigint;
  bucketBalanceAfter: bigint;
  lotId: string | null;
  holdId: string | null;
  expiresAt: Date | null;
  /** Set by the caller on the entries of a keyed operation (a debit, a hold, a keyed credit). */
  idempotencyKey: string | null;
  debitId: string | null;
}

export function emptyBuckets(): BucketBalances {
  return { PROMOTIONAL: 0n, BONUS: 0n, CASH: 0n };
}

export function isBucket(value: string): value is Bucket {
  return (buckets as readonly string[]).includes(value);
}

/** Math.min for bigint (Math.min takes numbers only). */
function smaller(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

function expired(lot: Lot, now: Date): boolean {
  return lot.expiresAt !== null && lot.expiresAt.getTime() <= now.getTime();
}

/** Waterfall order: bucket first, then soonest expiry (never-expiring last), then oldest. */
export function compareLots(a: Lot, b: Lot): number {
  const byBucket = buckets.indexOf(a.bucket) - buckets.indexOf(b.bucket);
  if (byBucket !== 0) return byBucket;
  const aExpiry = a.expiresAt?.getTime() ?? Number.POSITIVE_INFINITY;
  const bExpiry = b.expiresAt?.getTime() ?? Number.POSITIVE_INFINITY;
  if (aExpiry !== bExpiry) return aExpiry < bExpiry ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/**
 * Which lots pay `amount`, in waterfall order, or undefined when the unexpired lots cannot cover
 * it. Never more from a lot than it has left.
 */
export function allocateWaterfall(lots: readonly Lot[], amount: bigint, now: Date): Allocation[] | undefined {
  assert(amount > 0n, "an allocation is for a positive amount");
  const allocations: Allocation[] = [];
  let left = amount;
  for (const lot of [...lots].sort(compareLots)) {
    if (left === 0n) break;
    if (lot.remaining <= 0n || expired(lot, now)) continue;
    const take = smaller(lot.remaining, left);
    allocations.push({ lotId: lot.id, bucket: lot.bucket, amount: take });
    left -= take;
  }
  return left === 0n ? allocations : undefined;
}

/** Splits allocations (waterfall order) into the first `amount` and the rest. */
export function splitAllocations(
  allocations: readonly Allocation[],
  amount: bigint,
): { taken: Allocation[]; rest: Allocation[] } {
  const taken: Allocation[] = [];
  const rest: Allocation[] = [];
  let left = amount;
  for (const allocation of allocations) {
    const take = smaller(allocation.amount, left);
    if (take > 0n) taken.push({ ...allocation, amount: take });
    if (allocation.amount > take) rest.push({ ...allocation, amount: allocation.amount - take });
    left -= take;
  }
  assert(left === 0n, "a hold never commits more than it reserved");
  return { taken, rest };
}

/** Totals per bucket, in bucket order, leaving out empty ones. */
export function byBucket(allocations: readonly Allocation[]): { bucket: Bucket; amount: bigint }[] {
  const totals = emptyBuckets();
  for (const allocation of allocations) totals[allocation.bucket] += allocation.amount;
  return buckets
    .filter((bucket) => totals[bucket] > 0n)
    .map((bucket) => ({ bucket, amount: totals[bucket] }));
}

export function sumOf(allocations: readonly { amount: bigint }[]): bigint {
  return allocations.reduce((total, allocation) => total + allocation.amount, 0n);
}

/**
 * One wallet's movements inside one transaction: the caller loads the wallet's totals and open
 * lots, applies operations, then stores `entries`, the lots in `changedLots` and `totals`.
 * Pure: ids and time come from the caller.
 */
export class LedgerBatch {
  readonly entries: NewEntry[] = [];
  readonly #newLotIds = new Set<string>();
  readonly #lots: Map<string, Lot>;
  readonly #changed = new Set<string>();
  readonly #newId: () => string;
  #totals: LedgerTotals;

  constructor(totals: LedgerTotals, lots: readonly Lot[], newId: () => string) {
    this.#totals = { ...totals, buckets: { ...totals.buckets } };
    this.#lots = new Map(lots.map((lot) => [lot.id, { ...lot }]));
    this.#newId = newId;
  }

  get totals(): LedgerTotals {
    return { ...this.#totals, buckets: { ...this.#totals.buckets } };
  }

  /** Copies: the batch keeps changing its own. */
  get lots(): Lot[] {
    return [...this.#lots.values()].map((lot) => ({ ...lot }));
  }

  /** Lots the batch created, as they are now. */
  get newLots(): Lot[] {
    return [...this.#newLotIds].map((id) => ({ ...this.#lot(id) }));
  }

  /** Lots that existed before the batch and whose remaining amount changed. */
  get changedLots(): Lot[] {
    return [...this.#changed].map((id) => ({ ...this.#lot(id) }));
  }

  /** Makes lots the batch did not load (a hold's lots, now empty) available to give back to. */
  include(lots: readonly Lot[]): void {
    for (const lot of lots) if (!this.#lots.has(lot.id)) this.#lots.set(lot.id, { ...lot });
  }

  credit(lot: Lot): NewEntry {
    assert(lot.amount > 0n && lot.remaining === lot.amount, "a credit is a fresh positive lot");
    this.#lots.set(lot.id, { ...lot });
    this.#newLotIds.add(lot.id);
    return this.#entry("CREDIT", lot.bucket, lot.amount, { lotId: lot.id, expiresAt: lot.expiresAt });
  }

  /** DEBIT entries (one per bucket) taking `amount` in waterfall order; undefined if it cannot be covered. */
  debit(amount: bigint, now: Date): NewEntry[] | undefined {
    const allocations = allocateWaterfall(this.lots, amount, now);
    if (!allocations) return undefined;
    this.#take(allocations);
    return byBucket(allocations).map((part) => this.#entry("DEBIT", part.bucket, -part.amount, {}));
  }

  /** Reserves `amount` in waterfall order: HOLD entries, and the allocation the hold keeps. */
  hold(
    holdId: string,
    amount: bigint,
    now: Date,
  ): { entries: NewEntry[]; allocations: Allocation[] } | undefined {
    const allocations = allocateWaterfall(this.lots, amount, now);
    if (!allocations) return undefined;
    this.#take(allocations);
    this.#totals.held += amount;
    const entries = byBucket(allocations).map((part) =>
      this.#entry("HOLD", part.bucket, -part.amount, { holdId }),
    );
    return { entries, allocations };
  }

  /** Gives a hold's reservation back (RELEASE), then debits `committed` of it from the same lots. */
  settleHold(holdId: string, allocations: readonly Allocation[], committed: bigint): NewEntry[] {
    const reserved = sumOf(allocations);
    assert(committed >= 0n && committed <= reserved, "a hold commits at most what it reserved");
    assert(this.#totals.held >= reserved, "a hold never releases more than is held");
    this.#totals.held -= reserved;
    this.#give(allocations);
    const entries = byBucket(allocations).map((part) =>
      this.#entry("RELEASE", part.bucket, part.amount, { holdId }),
    );
    if (committed > 0n) {
      const { taken } = splitAllocations(allocations, committed);
      this.#take(taken);
      for (const part of byBucket(taken))
        entries.push(this.#entry("DEBIT", part.bucket, -part.amount, { holdId }));
    }
    return entries;
  }

  /** EXPIRY entries for what is left of every lot past its expiry (breakage). */
  expire(now: Date): NewEntry[] {
    const due = [...this.#lots.values()]
      .filter((lot) => lot.remaining > 0n && expired(lot, now))
      .sort(compareLots);
    return due.map((lot) => {
      const amount = lot.remaining;
      this.#take([{ lotId: lot.id, bucket: lot.bucket, amount }]);
      return this.#entry("EXPIRY", lot.bucket, -amount, { lotId: lot.id, expiresAt: lot.expiresAt });
    });
  }

  #lot(id: string): Lot {
    const lot = this.#lots.get(id);
    assert(lot !== undefined, `lot ${id} belongs to the wallet`);
    return lot;
  }

  #take(allocations: readonly Allocation[]): void {
    for (const allocation of allocations) {
      const lot = this.#lot(allocation.lotId);
      assert(lot.remaining >= allocation.amount, "a lot never gives more than it has left");
      lot.remaining -= allocation.amount;
      this.#touch(lot);
    }
  }

  #give(allocations: readonly Allocation[]): void {
    for (const allocation of allocations) {
      const lot = this.#lot(allocation.lotId);
      assert(lot.remaining + allocation.amount <= lot.amount, "a lot never holds more than was credited");
      lot.remaining += allocation.amount;
      this.#touch(lot);
    }
  }

  #touch(lot: Lot): void {
    if (!this.#newLotIds.has(lot.id)) this.#changed.add(lot.id);
  }

  #entry(
    type: EntryType,
    bucket: Bucket,
    amount: bigint,
    extra: { lotId?: string; holdId?: string; expiresAt?: Date | null },
  ): NewEntry {
    const totals = this.#totals;
    totals.balance += amount;
    totals.buckets[bucket] += amount;
    assert(totals.balance >= 0n && totals.buckets[bucket] >= 0n, "a wallet is never overdrawn");
    const entry: NewEntry = {
      id: this.#newId(),
      sequence: totals.entryCount,
      type,
      bucket,
      amount,
      balanceAfter: totals.balance,
      bucketBalanceAfter: totals.buckets[bucket],
      lotId: extra.lotId ?? null,
      holdId: extra.holdId ?? null,
      expiresAt: extra.expiresAt ?? null,
      idempotencyKey: null,
      debitId: null,
    };
    totals.entryCount += 1n;
    this.entries.push(entry);
    return entry;
  }
}

// ---- Auto top-up --------------------------------------------------------------------------------

export interface AutoTopUp {
  enabled: boolean;
  threshold: bigint;
  amount: bigint;
  bucket: Bucket;
}

/**
 * At most one top-up request per crossing: a wallet is armed while its balance is at or above the
 * threshold; the movement that takes it below (a debit, hold or expiry) requests one top-up and
 * disarms it until the balance is back at the threshold.
 */
export function autoTopUpAfter(
  config: AutoTopUp | null,
  armed: boolean,
  balance: bigint,
  decreased: boolean,
): { request: boolean; armed: boolean } {
  if (!config) return { request: false, armed: true };
  if (balance >= config.threshold) return { request: false, armed: true };
  if (config.enabled && armed && decreased) return { request: true, armed: false };
  return { request: false, armed };
}

// ---- Verification -------------------------------------------------------------------------------

export interface LedgerEntryView {
  sequence: bigint;
  type: string;
  bucket: string;
  amount: bigint;
  balanceAfter: bigint;
  bucketBalanceAfter: bigint;
}

/**
 * Every way the ledger and the cached totals could disagree; empty when they agree. The entries
 * come in sequence order; `holds` is what the open holds reserved, `lots` what the lots have left.
 */
export function ledgerProblems(
  entries: readonly LedgerEntryView[],
  totals: LedgerTotals,
  openHoldsTotal: bigint,
  lots: readonly Pick<Lot, "bucket" | "remaining">[],
): string[] {
  const problems: string[] = [];
  let balance = 0n;
  const bucketTotals = emptyBuckets();
  entries.forEach((entry, index) => {
    if (entry.sequence !== BigInt(index)) problems.push(`entry ${index} has sequence ${entry.sequence}`);
    if (!isBucket(entry.bucket)) {
      problems.push(`entry ${index} has bucket ${entry.bucket}`);
      return;
    }
    balance += entry.amount;
    bucketTotals[entry.bucket] += entry.amount;
    if (entry.balanceAfter !== balance)
      problems.push(`entry ${index}: balance_after ${entry.balanceAfter}, running sum ${balance}`);
    if (entry.bucketBalanceAfter !== bucketTotals[entry.bucket])
      problems.push(`entry ${index}: bucket_balance_after ${entry.bucketBalanceAfter}`);
    if (balance < 0n) problems.push(`entry ${index} overdraws the wallet`);
  });
  if (balance !== totals.balance) problems.push(`balance ${totals.balance}, sum of entries ${balance}`);
  if (BigInt(entries.length) !== totals.entryCount) problems.push("entry count differs");
  const lotTotals = emptyBuckets();
  for (const lot of lots) if (isBucket(lot.bucket)) lotTotals[lot.bucket] += lot.remaining;
  for (const bucket of buckets) {
    if (bucketTotals[bucket] !== totals.buckets[bucket])
      problems.push(`${bucket}: cached ${totals.buckets[bucket]}, sum of entries ${bucketTotals[bucket]}`);
    if (lotTotals[bucket] !== totals.buckets[bucket])
      problems.push(`${bucket}: cached ${totals.buckets[bucket]}, lots hold ${lotTotals[bucket]}`);
  }
  if (openHoldsTotal !== totals.held) problems.push(`held ${totals.held}, open holds ${openHoldsTotal}`);
  return problems;
}

/** A state that must never happen: a bug, not a client error. */
export function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(`wallet ledger invariant broken: ${message}`);
}
