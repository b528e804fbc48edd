import { type Kysely, sql } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    -- Every accepted event, once: the unique key is what makes a retried event a DUPLICATE.
    create table usage_events (
      id text primary key,
      tenant_id text not null,
      mode text not null,
      idempotency_key text not null,
      customer_id text not null,
      billable_unit_id text not null,
      metric_key text not null,
      event_type text,
      quantity numeric not null,
      value numeric,
      unique_value text,
      properties jsonb not null default '{}',
      occurred_at timestamptz not null,
      received_at timestamptz not null,
      source text not null,
      counted boolean not null,
      flags text[] not null default '{}',
      enrichment jsonb not null default '{}',
      estimated_revenue numeric,
      estimated_cost numeric,
      constraint usage_events_idempotency unique (tenant_id, mode, idempotency_key)
    );
    create index usage_events_customer_time on usage_events (tenant_id, mode, customer_id, billable_unit_id, occurred_at);
    create index usage_events_listing on usage_events (tenant_id, mode, id);

    -- Hourly totals per customer and unit, maintained in the same transaction as the events.
    create table usage_rollups (
      tenant_id text not null,
      mode text not null,
      customer_id text not null,
      billable_unit_id text not null,
      hour timestamptz not null,
      event_count bigint not null,
      value_sum numeric not null,
      value_max numeric,
      value_min numeric,
      latest_value numeric,
      latest_at timestamptz,
      primary key (tenant_id, mode, customer_id, billable_unit_id, hour)
    );

    create table dead_letters (
      id text primary key,
      tenant_id text not null,
      mode text not null,
      source text not null,
      reason_code text not null,
      reason text not null,
      payload jsonb not null,
      status text not null default 'PENDING',
      replayed_event_id text,
      replayed_at timestamptz,
      created_at timestamptz not null default now()
    );
    create index dead_letters_listing on dead_letters (tenant_id, mode, id);

    create table import_jobs (
      id text primary key,
      tenant_id text not null,
      mode text not null,
      status text not null,
      format text not null,
      filename text,
      content bytea not null,
      total_rows integer not null default 0,
      processed_rows integer not null default 0,
      accepted_rows integer not null default 0,
      duplicate_rows integer not null default 0,
      failed_rows integer not null default 0,
      errors jsonb not null default '[]',
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      completed_at timestamptz,
      attempt integer not null default 0
    );
    create index import_jobs_listing on import_jobs (tenant_id, mode, id);
    create index import_jobs_pending on import_jobs (status) where status in ('QUEUED', 'PROCESSING');
  `.execute(db);
}
