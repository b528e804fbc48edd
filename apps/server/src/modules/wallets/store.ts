import type { Kysely, Selectable } from "kysely";
import { fetchPage, type Page, type PageRequest } from "../../db/pagination.ts";
import type { Database, Mode } from "../../db/schema.ts";
import type { TenantScope } from "../../http/route-config.ts";
import {
  type Allocation,
  type AutoTopUp,
  type Bucket,
  type BucketBalances,
  type EntryType,
  type HoldStatus,
  isBucket,
  type LedgerBatch,
  type LedgerTotals,
  type Lot,
} from "./domain.ts";
import type { WalletEntriesTable, WalletHoldsTable, WalletLotsTable, WalletsTable } from "./tables.ts";

type Db = Kysely<Database>;

export interface Wallet extends LedgerTotals {
  id: string;
  tenantId: string;
  mode: Mode;
  customerId: string;
  currency: string;
  autoTopUp: AutoTopUp | null;
  autoTopUpArmed: boolean;
  createdAt: Date;
  updatedAt: Date;
}

export interface LedgerEntry {
  id: string;
  walletId: string;
  sequence: bigint;
  type: EntryType;
  bucket: Bucket;
  amount: bigint;
  balanceAfter: bigint;
  bucketBalanceAfter: bigint;
  idempotencyKey: string | null;
  holdId: string | null;
  lotId: string | null;
  debitId: string | null;
  expiresAt: Date | null;
  createdAt: Date;
}

export interface Hold {
  id: string;
  tenantId: string;
  mode: Mode;
  walletId: string;
  amount: bigint;
  committedAmount: bigint | null;
  status: HoldStatus;
  idempotencyKey: string;
  allocations: Allocation[];
  createdAt: Date;
  updatedAt: Date;
}

export interface Debit {
  id: string;
  walletId: string;
  customerId: string;
  currency: string;
  amount: bigint;
  idempotencyKey: string;
  createdAt: Date;
}

export interface TopUpRequest {
  id: string;
  walletId: string;
  amount: bigint;
  bucket: Bucket;
  status: string;
  balanceAtTrigger: bigint;
  createdAt: Date;
}

function bucketOf(value: string): Bucket {
  if (!isBucket(value)) throw new Error(`unknown wallet bucket '${value}' in storage`);
  return value;
}

export function fromDbWallet(row: Selectable<WalletsTable>): Wallet {
  const buckets: BucketBalances = { PROMOTIONAL: row.promotional, BONUS: row.bonus, CASH: row.cash };
  const autoTopUp =
    row.auto_top_up_threshold !== null && row.auto_top_up_amount !== null
      ? {
          enabled: row.auto_top_up_enabled,
          threshold: row.auto_top_up_threshold,
          amount: row.auto_top_up_amount,
          bucket: bucketOf(row.auto_top_up_bucket ?? "CASH"),
        }
      : null;
  return {
    id: row.id,
    tenantId: row.tenant_id,
    mode: row.mode,
    customerId: row.customer_id,
    currency: row.currency,
    balance: row.balance,
    held: row.held,
    buckets,
    entryCount: row.entry_count,
    autoTopUp,
    autoTopUpArmed: row.auto_top_up_armed,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function fromDbEntry(row: Selectable<WalletEntriesTable>): LedgerEntry {
  return {
    id: row.id,
    walletId: row.wallet_id,
    sequence: row.sequence,
    type: row.type as EntryType,
    bucket: bucketOf(row.bucket),
    amount: row.amount,
    balanceAfter: row.balance_after,
    bucketBalanceAfter: row.bucket_balance_after,
    idempotencyKey: row.idempotency_key,
    holdId: row.hold_id,
    lotId: row.lot_id,
    debitId: row.debit_id,
    expiresAt: row.expires_at,
    createdAt: row.created_at,
  };
}

function fromDbLot(row: Selectable<WalletLotsTable>): Lot {
  return {
    id: row.id,
    bucket: bucketOf(row.bucket),
    amount: row.amount,
    remaining: row.remaining,
    expiresAt: row.expires_at,
    createdAt: row.created_at,
  };
}

function fromDbHold(row: Selectable<WalletHoldsTable>): Hold {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    mode: row.mode,
    walletId: row.wallet_id,
    amount: row.amount,
    committedAmount: row.committed_amount,
    status: row.status as HoldStatus,
    idempotencyKey: row.idempotency_key,
    allocations: row.allocations.map((allocation) => ({
      lotId: allocation.lot_id,
      bucket: bucketOf(allocation.bucket),
      amount: BigInt(allocation.amount),
    })),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

// ---- Wallets ------------------------------------------------------------------------------------

export async function findWallet(db: Db, scope: TenantScope, id: string): Promise<Wallet | undefined> {
  const row = await db
    .selectFrom("wallets")
    .selectAll()
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("id", "=", id)
    .executeTakeFirst();
  return row && fromDbWallet(row);
}

export async function findWalletFor(
  db: Db,
  scope: TenantScope,
  customerId: string,
  currency: string,
): Promise<Wallet | undefined> {
  const row = await db
    .selectFrom("wallets")
    .selectAll()
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("customer_id", "=", customerId)
    .where("currency", "=", currency)
    .executeTakeFirst();
  return row && fromDbWallet(row);
}

/** The wallet row, locked until the transaction ends: every movement of one wallet is serialised here. */
export async function lockWallet(trx: Db, scope: TenantScope, id: string): Promise<Wallet | undefined> {
  const row = await trx
    .selectFrom("wallets")
    .selectAll()
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("id", "=", id)
    .forUpdate()
    .executeTakeFirst();
  return row && fromDbWallet(row);
}

/** Creates the wallet unless the customer already has one in that currency; true when created. */
export async function insertWallet(
  db: Db,
  scope: TenantScope,
  wallet: { id: string; customerId: string; currency: string; now: Date },
): Promise<boolean> {
  const result = await db
    .insertInto("wallets")
    .values({
      id: wallet.id,
      tenant_id: scope.tenantId,
      mode: scope.mode,
      customer_id: wallet.customerId,
      currency: wallet.currency,
      created_at: wallet.now,
      updated_at: wallet.now,
    })
    .onConflict((oc) => oc.columns(["tenant_id", "mode", "customer_id", "currency"]).doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0n) === 1;
}

export async function listWallets(db: Db, scope: TenantScope, customerId: string): Promise<Wallet[]> {
  const rows = await db
    .selectFrom("wallets")
    .selectAll()
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("customer_id", "=", customerId)
    .orderBy("currency")
    .execute();
  return rows.map(fromDbWallet);
}

export async function updateAutoTopUp(db: Db, walletId: string, config: AutoTopUp, now: Date): Promise<void> {
  await db
    .updateTable("wallets")
    .set({
      auto_top_up_enabled: config.enabled,
      auto_top_up_threshold: config.threshold,
      auto_top_up_amount: config.amount,
      auto_top_up_bucket: config.bucket,
      updated_at: now,
    })
    .where("id", "=", walletId)
    .execute();
}

// ---- Lots and entries ---------------------------------------------------------------------------

export async function openLots(db: Db, walletId: string): Promise<Lot[]> {
  const rows = await db
    .selectFrom("wallet_lots")
    .selectAll()
    .where("wallet_id", "=", walletId)
    .where("remaining", ">", 0n)
    .execute();
  return rows.map(fromDbLot);
}

export async function lotsById(db: Db, walletId: string, ids: readonly string[]): Promise<Lot[]> {
  if (ids.length === 0) return [];
  const rows = await db
    .selectFrom("wallet_lots")
    .selectAll()
    .where("wallet_id", "=", walletId)
    .where("id", "in", [...ids])
    .execute();
  return rows.map(fromDbLot);
}

export async function allLots(db: Db, walletId: string): Promise<Lot[]> {
  const rows = await db.selectFrom("wallet_lots").selectAll().where("wallet_id", "=", walletId).execute();
  return rows.map(fromDbLot);
}

/** Wallets with a lot past its expiry that still has something left. */
export async function walletsWithDueLots(
  db: Db,
  now: Date,
): Promise<{ id: string; tenantId: string; mode: Mode }[]> {
  const rows = await db
    .selectFrom("wallet_lots")
    .innerJoin("wallets", "wallets.id", "wallet_lots.wallet_id")
    .select(["wallets.id", "wallets.tenant_id", "wallets.mode"])
    .distinct()
    .where("wallet_lots.remaining", ">", 0n)
    .where("wallet_lots.expires_at", "<=", now)
    .execute();
  return rows.map((row) => ({ id: row.id, tenantId: row.tenant_id, mode: row.mode }));
}

export interface BatchMarks {
  /** Written only when it changes. */
  autoTopUpArmed?: boolean | undefined;
}

/** Writes what a batch did: its entries, new and changed lots, and the wallet's new totals. */
export async function saveBatch(
  trx: Db,
  scope: TenantScope,
  wallet: Wallet,
  batch: LedgerBatch,
  now: Date,
  marks: BatchMarks = {},
): Promise<void> {
  if (batch.entries.length === 0 && marks.autoTopUpArmed === undefined) return;
  if (batch.newLots.length > 0) {
    await trx
      .insertInto("wallet_lots")
      .values(
        batch.newLots.map((lot) => ({
          id: lot.id,
          wallet_id: wallet.id,
          bucket: lot.bucket,
          amount: lot.amount,
          remaining: lot.remaining,
          expires_at: lot.expiresAt,
          created_at: lot.createdAt,
        })),
      )
      .execute();
  }
  for (const lot of batch.changedLots) {
    await trx.updateTable("wallet_lots").set({ remaining: lot.remaining }).where("id", "=", lot.id).execute();
  }
  if (batch.entries.length > 0) {
    await trx
      .insertInto("wallet_entries")
      .values(
        batch.entries.map((entry) => ({
          id: entry.id,
          tenant_id: scope.tenantId,
          mode: scope.mode,
          wallet_id: wallet.id,
          sequence: entry.sequence,
          type: entry.type,
          bucket: entry.bucket,
          amount: entry.amount,
          balance_after: entry.balanceAfter,
          bucket_balance_after: entry.bucketBalanceAfter,
          idempotency_key: entry.idempotencyKey,
          hold_id: entry.holdId,
          lot_id: entry.lotId,
          debit_id: entry.debitId,
          expires_at: entry.expiresAt,
          created_at: now,
        })),
      )
      .execute();
  }
  const totals = batch.totals;
  await trx
    .updateTable("wallets")
    .set({
      balance: totals.balance,
      held: totals.held,
      promotional: totals.buckets.PROMOTIONAL,
      bonus: totals.buckets.BONUS,
      cash: totals.buckets.CASH,
      entry_count: totals.entryCount,
      updated_at: now,
      ...(marks.autoTopUpArmed === undefined ? {} : { auto_top_up_armed: marks.autoTopUpArmed }),
    })
    .where("id", "=", wallet.id)
    .execute();
}

export async function listEntries(
  db: Db,
  scope: TenantScope,
  walletId: string,
  page: PageRequest,
): Promise<Page<LedgerEntry>> {
  const query = db
    .selectFrom("wallet_entries")
    .selectAll()
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("wallet_id", "=", walletId);
  const result = await fetchPage(query, "id", page);
  return { data: result.data.map(fromDbEntry), has_more: result.has_more };
}

export async function findEntry(db: Db, walletId: string, id: string): Promise<LedgerEntry | undefined> {
  const row = await db
    .selectFrom("wallet_entries")
    .selectAll()
    .where("wallet_id", "=", walletId)
    .where("id", "=", id)
    .executeTakeFirst();
  return row && fromDbEntry(row);
}

/** Every entry of a wallet, oldest first: for verification. */
export async function entriesInOrder(db: Db, walletId: string): Promise<LedgerEntry[]> {
  const rows = await db
    .selectFrom("wallet_entries")
    .selectAll()
    .where("wallet_id", "=", walletId)
    .orderBy("sequence")
    .execute();
  return rows.map(fromDbEntry);
}

export async function entriesWhere(
  db: Db,
  walletId: string,
  filter: { debitId?: string; holdId?: string; creditKey?: string },
): Promise<LedgerEntry[]> {
  let query = db.selectFrom("wallet_entries").selectAll().where("wallet_id", "=", walletId);
  if (filter.debitId !== undefined) query = query.where("debit_id", "=", filter.debitId);
  if (filter.holdId !== undefined) query = query.where("hold_id", "=", filter.holdId);
  if (filter.creditKey !== undefined)
    query = query.where("type", "=", "CREDIT").where("idempotency_key", "=", filter.creditKey);
  const rows = await query.orderBy("sequence").execute();
  return rows.map(fromDbEntry);
}

// ---- Debits -------------------------------------------------------------------------------------

export async function findDebitByKey(
  db: Db,
  scope: TenantScope,
  idempotencyKey: string,
): Promise<Debit | undefined> {
  const row = await db
    .selectFrom("wallet_debits")
    .selectAll()
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("idempotency_key", "=", idempotencyKey)
    .executeTakeFirst();
  return (
    row && {
      id: row.id,
      walletId: row.wallet_id,
      customerId: row.customer_id,
      currency: row.currency,
      amount: row.amount,
      idempotencyKey: row.idempotency_key,
      createdAt: row.created_at,
    }
  );
}

export async function insertDebit(db: Db, scope: TenantScope, debit: Debit): Promise<void> {
  await db
    .insertInto("wallet_debits")
    .values({
      id: debit.id,
      tenant_id: scope.tenantId,
      mode: scope.mode,
      wallet_id: debit.walletId,
      customer_id: debit.customerId,
      currency: debit.currency,
      amount: debit.amount,
      idempotency_key: debit.idempotencyKey,
      created_at: debit.createdAt,
    })
    .execute();
}

// ---- Holds --------------------------------------------------------------------------------------

export async function findHold(db: Db, scope: TenantScope, id: string): Promise<Hold | undefined> {
  const row = await db
    .selectFrom("wallet_holds")
    .selectAll()
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("id", "=", id)
    .executeTakeFirst();
  return row && fromDbHold(row);
}

export async function findHoldByKey(
  db: Db,
  walletId: string,
  idempotencyKey: string,
): Promise<Hold | undefined> {
  const row = await db
    .selectFrom("wallet_holds")
    .selectAll()
    .where("wallet_id", "=", walletId)
    .where("idempotency_key", "=", idempotencyKey)
    .executeTakeFirst();
  return row && fromDbHold(row);
}

export async function openHoldsTotal(db: Db, walletId: string): Promise<bigint> {
  const rows = await db
    .selectFrom("wallet_holds")
    .select("amount")
    .where("wallet_id", "=", walletId)
    .where("status", "=", "HELD")
    .execute();
  return rows.reduce((total, row) => total + row.amount, 0n);
}

export async function insertHold(db: Db, hold: Hold): Promise<void> {
  await db
    .insertInto("wallet_holds")
    .values({
      id: hold.id,
      tenant_id: hold.tenantId,
      mode: hold.mode,
      wallet_id: hold.walletId,
      amount: hold.amount,
      committed_amount: hold.committedAmount,
      status: hold.status,
      idempotency_key: hold.idempotencyKey,
      allocations: JSON.stringify(
        hold.allocations.map((allocation) => ({
          lot_id: allocation.lotId,
          bucket: allocation.bucket,
          amount: allocation.amount.toString(),
        })),
      ),
      created_at: hold.createdAt,
      updated_at: hold.updatedAt,
    })
    .execute();
}

export async function settleHold(
  db: Db,
  id: string,
  status: HoldStatus,
  committedAmount: bigint | null,
  now: Date,
): Promise<void> {
  await db
    .updateTable("wallet_holds")
    .set({ status, committed_amount: committedAmount, updated_at: now })
    .where("id", "=", id)
    .execute();
}

// ---- Top-up requests ----------------------------------------------------------------------------

export async function insertTopUpRequest(db: Db, scope: TenantScope, request: TopUpRequest): Promise<void> {
  await db
    .insertInto("top_up_requests")
    .values({
      id: request.id,
      tenant_id: scope.tenantId,
      mode: scope.mode,
      wallet_id: request.walletId,
      amount: request.amount,
      bucket: request.bucket,
      status: request.status,
      balance_at_trigger: request.balanceAtTrigger,
      created_at: request.createdAt,
    })
    .execute();
}

export async function listTopUpRequests(
  db: Db,
  scope: TenantScope,
  walletId: string,
  page: PageRequest,
): Promise<Page<TopUpRequest>> {
  const query = db
    .selectFrom("top_up_requests")
    .selectAll()
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("wallet_id", "=", walletId);
  const result = await fetchPage(query, "id", page);
  return {
    data: result.data.map((row) => ({
      id: row.id,
      walletId: row.wallet_id,
      amount: row.amount,
      bucket: bucketOf(row.bucket),
      status: row.status,
      balanceAtTrigger: row.balance_at_trigger,
      createdAt: row.created_at,
    })),
    has_more: result.has_more,
  };
}

// ---- Prepaid escrow -----------------------------------------------------------------------------

/** Customers with a subscription that has not ended on a PREPAID offering: their wallets can block. */
export async function prepaidCustomers(
  db: Db,
): Promise<{ tenantId: string; mode: Mode; customerId: string }[]> {
  const rows = await db
    .selectFrom("subscriptions")
    .innerJoin("offerings", "offerings.id", "subscriptions.offering_id")
    .select(["subscriptions.tenant_id", "subscriptions.mode", "subscriptions.customer_id"])
    .distinct()
    .where("offerings.billing_mode", "=", "PREPAID")
    .where("subscriptions.status", "not in", ["EXPIRED", "CANCELLED"])
    .execute();
  return rows.map((row) => ({ tenantId: row.tenant_id, mode: row.mode, customerId: row.customer_id }));
}
