import { type Kysely, sql } from "kysely";

// Forward-only: never edit a migration that has shipped; add a new one.
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    -- A tenant's payment configuration, per mode (a sandbox holds an sk_test_ key, live an sk_live_
    -- one). The provider secret is sealed (AES-256-GCM): it must be read back to call the provider,
    -- so it cannot be hashed. dunning_schedule_days null means the default [0, 3, 7].
    -- automatic_collection false: invoices wait for POST /v1/invoices/{id}/pay (no dunning).
    create table payment_settings (
      tenant_id text not null references tenants(id),
      mode text not null check (mode in ('live', 'test')),
      stripe_secret_sealed text,
      stripe_secret_hint text,
      stripe_updated_at timestamptz,
      automatic_collection boolean not null default true,
      dunning_schedule_days jsonb,
      updated_at timestamptz not null,
      primary key (tenant_id, mode)
    );

    -- A customer's saved payment method at a provider (the provider keeps the card; Aforo keeps
    -- the reference). At most one default per customer; removed methods are kept (payments name them).
    create table payment_methods (
      id text primary key,
      tenant_id text not null references tenants(id),
      mode text not null check (mode in ('live', 'test')),
      customer_id text not null references customers(id),
      provider text not null check (provider in ('stripe')),
      provider_payment_method_id text not null,
      provider_customer_id text,
      is_default boolean not null default false,
      created_at timestamptz not null,
      removed_at timestamptz
    );
    create index payment_methods_listing on payment_methods (tenant_id, mode, customer_id, id);
    create unique index payment_methods_reference on payment_methods
      (tenant_id, mode, customer_id, provider, provider_payment_method_id) where removed_at is null;
    create unique index payment_methods_default on payment_methods (tenant_id, mode, customer_id)
      where is_default and removed_at is null;

    -- Every attempt to collect money: an invoice's (operator, automatic or dunning) or a wallet
    -- top-up's. A payment is PENDING while the provider has it; at most one PENDING per invoice
    -- and per top-up request, so two collectors can never charge the same thing at once. The
    -- idempotency key is the one sent to the provider: a retried or resumed charge reuses it.
    create table payments (
      id text primary key,
      tenant_id text not null references tenants(id),
      mode text not null check (mode in ('live', 'test')),
      customer_id text not null references customers(id),
      invoice_id text references invoices(id),
      top_up_request_id text references top_up_requests(id),
      dunning_cycle_id text,
      payment_method_id text references payment_methods(id),
      provider text not null check (provider in ('manual', 'stripe')),
      amount bigint not null check (amount >= 0),
      currency text not null,
      status text not null check (status in ('PENDING', 'SUCCEEDED', 'FAILED')),
      provider_payment_id text,
      failure_code text,
      failure_message text,
      attempt integer not null check (attempt >= 1),
      trigger text not null check (trigger in ('operator', 'automatic', 'dunning', 'top_up')),
      idempotency_key text not null,
      created_at timestamptz not null,
      updated_at timestamptz not null,
      check ((invoice_id is null) <> (top_up_request_id is null))
    );
    create index payments_listing on payments (tenant_id, mode, id);
    create index payments_invoice on payments (tenant_id, mode, invoice_id, id);
    create index payments_top_up on payments (tenant_id, mode, top_up_request_id, id);
    create unique index payments_idempotency on payments (tenant_id, mode, idempotency_key);
    create unique index payments_one_pending_invoice on payments (invoice_id) where status = 'PENDING';
    create unique index payments_one_pending_top_up on payments (top_up_request_id) where status = 'PENDING';
    create index payments_pending on payments (updated_at) where status = 'PENDING';

    -- Dunning: one cycle per invoice collected automatically. Attempts are made at
    -- started_at + schedule_days[i]; after the last one fails the invoice is UNCOLLECTIBLE and the
    -- subscription SUSPENDED. subscription_synced is false while the subscription (and its consumer
    -- keys) may not reflect the cycle yet: the background pass applies it (crash-safe).
    create table dunning_cycles (
      id text primary key,
      tenant_id text not null references tenants(id),
      mode text not null check (mode in ('live', 'test')),
      invoice_id text not null references invoices(id),
      subscription_id text not null,
      customer_id text not null,
      status text not null check (status in ('ACTIVE', 'RECOVERED', 'EXHAUSTED', 'CLOSED')),
      schedule_days jsonb not null,
      attempts integer not null default 0,
      next_attempt_at timestamptz,
      last_failure_code text,
      last_failure_message text,
      subscription_synced boolean not null default true,
      started_at timestamptz not null,
      ended_at timestamptz,
      created_at timestamptz not null,
      updated_at timestamptz not null
    );
    create unique index dunning_cycles_invoice on dunning_cycles (invoice_id);
    create index dunning_cycles_listing on dunning_cycles (tenant_id, mode, id);
    create index dunning_cycles_subscription on dunning_cycles (tenant_id, mode, subscription_id);
    create index dunning_cycles_due on dunning_cycles (next_attempt_at) where status = 'ACTIVE';
    create index dunning_cycles_unsynced on dunning_cycles (updated_at) where not subscription_synced;

    -- Consumer keys of a SUSPENDED subscription are suspended (refused like revoked ones) and come
    -- back when the subscription is paid up; revocation stays final.
    alter table api_keys add column suspended_at timestamptz;

    create index top_up_requests_pending on top_up_requests (created_at) where status = 'PENDING';
  `.execute(db);
}
