import { type TSchema, Type } from "typebox";
import { Timestamp } from "../../../http/schemas.ts";
import type { Debit, Hold, LedgerEntry, TopUpRequest, Wallet } from "../service.ts";

/** Minor units as JSON integers: money stays an integer end to end. */
export const MinorUnits = Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER });
export const BucketSchema = Type.Union([
  Type.Literal("PROMOTIONAL"),
  Type.Literal("BONUS"),
  Type.Literal("CASH"),
]);
const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

export const WalletSchema = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal("wallet"),
    customer_id: Type.String(),
    currency: Type.String(),
    balance: Type.Integer({ description: "spendable now, minor units: the sum of the ledger's amounts" }),
    held: Type.Integer({ description: "reserved by open holds, minor units" }),
    buckets: Type.Object({ PROMOTIONAL: Type.Integer(), BONUS: Type.Integer(), CASH: Type.Integer() }),
    auto_top_up: Nullable(
      Type.Object({
        enabled: Type.Boolean(),
        threshold: Type.Integer(),
        amount: Type.Integer(),
        bucket: BucketSchema,
      }),
    ),
    created_at: Type.String(),
    updated_at: Type.String(),
  },
  { $id: "Wallet" },
);

export const LedgerEntrySchema = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal("ledger_entry"),
    wallet_id: Type.String(),
    type: Type.Union([
      Type.Literal("CREDIT"),
      Type.Literal("DEBIT"),
      Type.Literal("HOLD"),
      Type.Literal("RELEASE"),
      Type.Literal("EXPIRY"),
    ]),
    bucket: BucketSchema,
    amount: Type.Integer({ description: "signed: what the entry adds to the balance" }),
    balance_after: Type.Integer(),
    bucket_balance_after: Type.Integer(),
    idempotency_key: Nullable(Type.String()),
    hold_id: Nullable(Type.String()),
    expires_at: Nullable(Type.String()),
    created_at: Type.String(),
  },
  { $id: "LedgerEntry" },
);

export const HoldSchema = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal("hold"),
    wallet_id: Type.String(),
    amount: Type.Integer(),
    committed_amount: Nullable(Type.Integer()),
    status: Type.Union([Type.Literal("HELD"), Type.Literal("COMMITTED"), Type.Literal("RELEASED")]),
    idempotency_key: Type.String(),
    created_at: Type.String(),
    updated_at: Type.String(),
  },
  { $id: "Hold" },
);

export const DebitSchema = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal("wallet_debit"),
    wallet_id: Type.String(),
    customer_id: Type.String(),
    currency: Type.String(),
    amount: Type.Integer(),
    strategy: Type.Literal("WATERFALL"),
    idempotency_key: Type.String(),
    entries: Type.Array(Type.Ref("LedgerEntry"), { description: "one DEBIT entry per bucket drawn on" }),
    balance_after: Type.Integer(),
    created_at: Type.String(),
  },
  { $id: "WalletDebit" },
);

export const TopUpRequestSchema = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal("top_up_request"),
    wallet_id: Type.String(),
    amount: Type.Integer(),
    bucket: BucketSchema,
    status: Type.String({ description: "PENDING until payments collect it" }),
    balance_at_trigger: Type.Integer(),
    created_at: Type.String(),
  },
  { $id: "TopUpRequest" },
);

export const ExpiresAt = Timestamp;

function integer(value: bigint): number {
  const number = Number(value);
  if (!Number.isSafeInteger(number)) throw new Error(`${value} minor units do not fit a JSON integer`);
  return number;
}

function optionalInteger(value: bigint | null): number | null {
  return value === null ? null : integer(value);
}

export function walletToApi(wallet: Wallet) {
  return {
    id: wallet.id,
    object: "wallet" as const,
    customer_id: wallet.customerId,
    currency: wallet.currency,
    balance: integer(wallet.balance),
    held: integer(wallet.held),
    buckets: {
      PROMOTIONAL: integer(wallet.buckets.PROMOTIONAL),
      BONUS: integer(wallet.buckets.BONUS),
      CASH: integer(wallet.buckets.CASH),
    },
    auto_top_up: wallet.autoTopUp && {
      enabled: wallet.autoTopUp.enabled,
      threshold: integer(wallet.autoTopUp.threshold),
      amount: integer(wallet.autoTopUp.amount),
      bucket: wallet.autoTopUp.bucket,
    },
    created_at: wallet.createdAt.toISOString(),
    updated_at: wallet.updatedAt.toISOString(),
  };
}

export function entryToApi(entry: LedgerEntry) {
  return {
    id: entry.id,
    object: "ledger_entry" as const,
    wallet_id: entry.walletId,
    type: entry.type,
    bucket: entry.bucket,
    amount: integer(entry.amount),
    balance_after: integer(entry.balanceAfter),
    bucket_balance_after: integer(entry.bucketBalanceAfter),
    idempotency_key: entry.idempotencyKey,
    hold_id: entry.holdId,
    expires_at: entry.expiresAt?.toISOString() ?? null,
    created_at: entry.createdAt.toISOString(),
  };
}

export function holdToApi(hold: Hold) {
  return {
    id: hold.id,
    object: "hold" as const,
    wallet_id: hold.walletId,
    amount: integer(hold.amount),
    committed_amount: optionalInteger(hold.committedAmount),
    status: hold.status,
    idempotency_key: hold.idempotencyKey,
    created_at: hold.createdAt.toISOString(),
    updated_at: hold.updatedAt.toISOString(),
  };
}

export function debitToApi(debit: Debit, entries: LedgerEntry[]) {
  const last = entries[entries.length - 1];
  return {
    id: debit.id,
    object: "wallet_debit" as const,
    wallet_id: debit.walletId,
    customer_id: debit.customerId,
    currency: debit.currency,
    amount: integer(debit.amount),
    strategy: "WATERFALL" as const,
    idempotency_key: debit.idempotencyKey,
    entries: entries.map(entryToApi),
    balance_after: last ? integer(last.balanceAfter) : 0,
    created_at: debit.createdAt.toISOString(),
  };
}

export function topUpRequestToApi(request: TopUpRequest) {
  return {
    id: request.id,
    object: "top_up_request" as const,
    wallet_id: request.walletId,
    amount: integer(request.amount),
    bucket: request.bucket,
    status: request.status,
    balance_at_trigger: integer(request.balanceAtTrigger),
    created_at: request.createdAt.toISOString(),
  };
}
