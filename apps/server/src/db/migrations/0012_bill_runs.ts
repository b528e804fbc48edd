import { type Kysely, sql } from "kysely";

// Forward-only: never edit a migration that has shipped; add a new one.
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table bill_runs (
      id text primary key,
      tenant_id text not null references tenants(id),
      mode text not null check (mode in ('live', 'test')),
      status text not null check (status in ('RUNNING', 'COMPLETED', 'FAILED')),
      as_of timestamptz not null,
      subscriptions_total integer,
      subscriptions_processed integer not null default 0,
      periods_invoiced integer not null default 0,
      invoices_created integer not null default 0,
      -- The first invoice ids created (capped, see modules/bill-runs/domain.ts); the count is above.
      invoice_ids jsonb not null default '[]',
      error text,
      -- Written with every progress update: a RUNNING run whose heartbeat is stale was abandoned
      -- (its process died) and the next run takes over.
      heartbeat_at timestamptz not null,
      created_at timestamptz not null default now(),
      completed_at timestamptz
    );
    create index bill_runs_listing on bill_runs (tenant_id, mode, id);
    -- One running run per tenant and mode: a concurrent start fails on this index (409).
    create unique index bill_runs_one_running on bill_runs (tenant_id, mode) where status = 'RUNNING';

    -- Every subscription period a run has invoiced: where the next run starts from, and which
    -- instants are closed to usage (late events there go to reconciliation).
    create table billed_periods (
      tenant_id text not null references tenants(id),
      mode text not null check (mode in ('live', 'test')),
      subscription_id text not null references subscriptions(id),
      customer_id text not null,
      period_start timestamptz not null,
      period_end timestamptz not null,
      billable_unit_ids text[] not null default '{}',
      invoice_id text not null,
      bill_run_id text,
      created_at timestamptz not null default now(),
      primary key (subscription_id, period_start)
    );
    create index billed_periods_recent on billed_periods (period_end);

    -- A late event adjusted on an invoice: the primary key makes a second adjustment impossible.
    create table usage_adjustments (
      event_id text primary key,
      tenant_id text not null references tenants(id),
      mode text not null check (mode in ('live', 'test')),
      invoice_id text not null,
      created_at timestamptz not null default now()
    );

    -- Reconciliation events are rare; invoicing asks for them on every period it closes.
    create index usage_events_reconciliation on usage_events (tenant_id, mode, customer_id)
      where 'RECONCILIATION' = any(flags);
  `.execute(db);
}
