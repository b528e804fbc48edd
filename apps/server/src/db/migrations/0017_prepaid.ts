import { type Kysely, sql } from "kysely";

// Forward-only: never edit a migration that has shipped; add a new one.
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    -- Prepaid and hybrid usage paid from the wallet as it is metered, one row per subscription
    -- period (ADR 0015). usage_minor is the period's usage charge as last rated from the stored
    -- events (the same rounding as the invoice's usage lines); debited_minor is what the wallet
    -- paid of it, split by bucket so a settlement can give an excess back in reverse waterfall
    -- order. Rows are changed only under the wallet's row lock, in the transaction that writes the
    -- ledger entries, so the row and the ledger never disagree. invoice_id is set by the invoice
    -- that settles the period: no metered debit happens after it.
    create table prepaid_usage (
      tenant_id text not null,
      mode text not null check (mode in ('live', 'test')),
      subscription_id text not null,
      period_start timestamptz not null,
      period_end timestamptz not null,
      customer_id text not null,
      currency text not null,
      wallet_id text references wallets(id),
      usage_minor bigint not null default 0 check (usage_minor >= 0),
      debited_minor bigint not null default 0 check (debited_minor >= 0),
      debited_promotional bigint not null default 0 check (debited_promotional >= 0),
      debited_bonus bigint not null default 0 check (debited_bonus >= 0),
      debited_cash bigint not null default 0 check (debited_cash >= 0),
      invoice_id text,
      settled_at timestamptz,
      created_at timestamptz not null,
      updated_at timestamptz not null,
      primary key (tenant_id, mode, subscription_id, period_start),
      check (debited_minor = debited_promotional + debited_bonus + debited_cash)
    );
    create index prepaid_usage_unsettled on prepaid_usage (tenant_id, mode, subscription_id)
      where invoice_id is null;
  `.execute(db);
}
