import { type Kysely, sql } from "kysely";

// Forward-only: never edit a migration that has shipped; add a new one.
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table subscriptions (
      id text primary key,
      tenant_id text not null references tenants(id),
      mode text not null check (mode in ('live', 'test')),
      customer_id text not null references customers(id),
      offering_id text not null references offerings(id),
      status text not null check (status in ('CREATED', 'TRIALING', 'ACTIVE', 'PAST_DUE', 'PAUSED',
        'EXPIRING_SOON', 'SUSPENDED', 'EXPIRED', 'CANCELLED')),
      -- [{rate_plan_id, version}]: the rate plan versions the subscription is pinned to.
      items jsonb not null,
      billing_period jsonb not null,
      currency text not null,
      start_at timestamptz not null,
      trial_end_at timestamptz,
      current_period_start timestamptz not null,
      current_period_end timestamptz not null,
      billing_anchor_day integer check (billing_anchor_day between 1 and 31),
      cancel_at_period_end boolean not null default false,
      cancel_at timestamptz,
      canceled_at timestamptz,
      paused_at timestamptz,
      ended_at timestamptz,
      promotion_id text,
      promotion_code text,
      price_overrides jsonb,
      metadata jsonb not null default '{}',
      -- When time next changes the subscription (trial end, period end, expiry); null once ended.
      -- The ticker selects on it, so it must be rewritten with every change.
      due_at timestamptz,
      -- Bumped on every write: in-memory copies keep the newest version they have seen.
      version integer not null default 1 check (version >= 1),
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    );
    create index subscriptions_tenant on subscriptions (tenant_id, mode, id);
    create index subscriptions_customer on subscriptions (tenant_id, mode, customer_id, id);
    create index subscriptions_offering_live on subscriptions (tenant_id, mode, offering_id)
      where status not in ('EXPIRED', 'CANCELLED');
    create index subscriptions_due on subscriptions (due_at) where due_at is not null;
    create index subscriptions_promotion on subscriptions (promotion_id) where promotion_id is not null;

    -- Immutable history: a row per status or plan change; only ended_at of the open row is set later.
    create table subscription_phases (
      seq bigint generated always as identity primary key,
      tenant_id text not null references tenants(id),
      mode text not null check (mode in ('live', 'test')),
      subscription_id text not null references subscriptions(id),
      status text not null,
      offering_id text not null,
      items jsonb not null,
      reason text not null,
      started_at timestamptz not null,
      ended_at timestamptz,
      -- Plan changes only: what proration needs.
      previous_offering_id text,
      previous_items jsonb,
      period_start timestamptz,
      period_end timestamptz,
      fraction_remaining numeric,
      created_at timestamptz not null default now()
    );
    create index subscription_phases_subscription on subscription_phases (subscription_id, seq);
  `.execute(db);
}
