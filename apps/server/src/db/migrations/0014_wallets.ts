import { type Kysely, sql } from "kysely";

// Forward-only: never edit a migration that has shipped; add a new one.
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    -- One wallet per customer and currency. balance, held and the bucket columns are caches of the
    -- entries below, rewritten in the same transaction as the entries (under SELECT … FOR UPDATE on
    -- this row), so concurrent debits serialise and the cache can never disagree with the ledger.
    create table wallets (
      id text primary key,
      tenant_id text not null references tenants(id),
      mode text not null check (mode in ('live', 'test')),
      customer_id text not null references customers(id),
      currency text not null,
      balance bigint not null default 0 check (balance >= 0),
      held bigint not null default 0 check (held >= 0),
      promotional bigint not null default 0 check (promotional >= 0),
      bonus bigint not null default 0 check (bonus >= 0),
      cash bigint not null default 0 check (cash >= 0),
      entry_count bigint not null default 0,
      auto_top_up_enabled boolean not null default false,
      auto_top_up_threshold bigint,
      auto_top_up_amount bigint,
      auto_top_up_bucket text,
      -- Cleared when a top-up is requested, set again once the balance is back at the threshold:
      -- one request per crossing.
      auto_top_up_armed boolean not null default true,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      unique (tenant_id, mode, customer_id, currency),
      check (balance = promotional + bonus + cash)
    );
    create index wallets_listing on wallets (tenant_id, mode, customer_id);

    -- Immutable: rows are only ever inserted.
    create table wallet_entries (
      id text primary key,
      tenant_id text not null,
      mode text not null,
      wallet_id text not null references wallets(id),
      sequence bigint not null,
      type text not null check (type in ('CREDIT', 'DEBIT', 'HOLD', 'RELEASE', 'EXPIRY')),
      bucket text not null check (bucket in ('PROMOTIONAL', 'BONUS', 'CASH')),
      amount bigint not null,
      balance_after bigint not null,
      bucket_balance_after bigint not null,
      idempotency_key text,
      hold_id text,
      lot_id text,
      debit_id text,
      expires_at timestamptz,
      created_at timestamptz not null,
      unique (wallet_id, sequence)
    );
    create index wallet_entries_listing on wallet_entries (wallet_id, id);
    -- A credit granted under a key (initial credits: the subscription id) is granted once.
    create unique index wallet_entries_credit_key on wallet_entries (wallet_id, idempotency_key)
      where type = 'CREDIT' and idempotency_key is not null;

    -- What is left of each credit, so debits and expiry know what remains per bucket and expiry.
    create table wallet_lots (
      id text primary key,
      wallet_id text not null references wallets(id),
      bucket text not null,
      amount bigint not null check (amount > 0),
      remaining bigint not null check (remaining >= 0 and remaining <= amount),
      expires_at timestamptz,
      created_at timestamptz not null
    );
    create index wallet_lots_open on wallet_lots (wallet_id) where remaining > 0;
    create index wallet_lots_due on wallet_lots (expires_at) where remaining > 0 and expires_at is not null;

    create table wallet_debits (
      id text primary key,
      tenant_id text not null,
      mode text not null,
      wallet_id text not null references wallets(id),
      customer_id text not null,
      currency text not null,
      amount bigint not null check (amount > 0),
      idempotency_key text not null,
      created_at timestamptz not null,
      unique (tenant_id, mode, idempotency_key)
    );

    create table wallet_holds (
      id text primary key,
      tenant_id text not null,
      mode text not null,
      wallet_id text not null references wallets(id),
      amount bigint not null check (amount > 0),
      committed_amount bigint,
      status text not null check (status in ('HELD', 'COMMITTED', 'RELEASED')),
      idempotency_key text not null,
      allocations jsonb not null,
      created_at timestamptz not null,
      updated_at timestamptz not null,
      unique (wallet_id, idempotency_key)
    );

    create table top_up_requests (
      id text primary key,
      tenant_id text not null,
      mode text not null,
      wallet_id text not null references wallets(id),
      amount bigint not null check (amount > 0),
      bucket text not null,
      status text not null check (status in ('PENDING', 'SUCCEEDED', 'FAILED')),
      balance_at_trigger bigint not null,
      created_at timestamptz not null
    );
    create index top_up_requests_listing on top_up_requests (wallet_id, id);
  `.execute(db);
}
