import { type Kysely, sql } from "kysely";

// Forward-only: never edit a migration that has shipped; add a new one.
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table rate_plans (
      id text primary key,
      tenant_id text not null references tenants(id),
      mode text not null check (mode in ('live', 'test')),
      latest_version integer not null check (latest_version >= 1),
      status text not null,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    );
    create index rate_plans_tenant on rate_plans (tenant_id, mode, id);

    -- Versions are immutable: rows are inserted, never updated (subscriptions pin them).
    create table rate_plan_versions (
      tenant_id text not null references tenants(id),
      mode text not null check (mode in ('live', 'test')),
      rate_plan_id text not null references rate_plans(id),
      version integer not null check (version >= 1),
      name text not null,
      currency text not null,
      definition jsonb not null,
      billable_unit_ids text[] not null default '{}',
      created_at timestamptz not null default now(),
      primary key (rate_plan_id, version)
    );
    create index rate_plan_versions_tenant on rate_plan_versions (tenant_id, mode, rate_plan_id);

    create table offerings (
      id text primary key,
      tenant_id text not null references tenants(id),
      mode text not null check (mode in ('live', 'test')),
      name text not null,
      description text,
      rate_plan_ids text[] not null,
      billing_mode text not null check (billing_mode in ('POSTPAID', 'PREPAID', 'HYBRID')),
      trial_days integer not null default 0 check (trial_days >= 0),
      escrow jsonb,
      initial_credits numeric,
      currency text,
      status text not null check (status in ('DRAFT', 'PUBLISHED', 'ARCHIVED')),
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    );
    create index offerings_tenant on offerings (tenant_id, mode, id);

    create table promotions (
      id text primary key,
      tenant_id text not null references tenants(id),
      mode text not null check (mode in ('live', 'test')),
      code text not null,
      code_normalized text not null,
      percent_off numeric,
      amount_off numeric,
      currency text,
      duration text not null check (duration in ('once', 'repeating', 'forever')),
      duration_in_periods integer,
      expires_at timestamptz,
      max_redemptions integer,
      offering_ids text[] not null default '{}',
      status text not null check (status in ('ACTIVE', 'ARCHIVED')),
      created_at timestamptz not null default now(),
      archived_at timestamptz,
      check ((percent_off is null) <> (amount_off is null)),
      unique (tenant_id, mode, code_normalized)
    );
    create index promotions_tenant on promotions (tenant_id, mode, id);
  `.execute(db);
}
