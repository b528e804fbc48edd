import { type Kysely, sql } from "kysely";

// Forward-only: never edit a migration that has shipped; add a new one.
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    -- A tenant's receivers. The signing secret is stored encrypted (AES-256-GCM, see
    -- modules/webhooks/secrets.ts): it must be recoverable to sign, so it cannot be hashed. During a
    -- rotation the previous secret keeps signing (a second signature) until it expires.
    create table webhook_endpoints (
      id text primary key,
      tenant_id text not null references tenants(id),
      mode text not null check (mode in ('live', 'test')),
      url text not null,
      description text,
      events text[] not null,
      enabled boolean not null default true,
      secret_sealed text not null,
      previous_secret_sealed text,
      previous_secret_expires_at timestamptz,
      created_at timestamptz not null,
      updated_at timestamptz not null
    );
    create index webhook_endpoints_listing on webhook_endpoints (tenant_id, mode, id);

    -- The outbox: one row per announced change, written in the transaction that made the change.
    -- payload is the exact body every endpoint receives ({type, timestamp, data}), kept as text so
    -- retries send the same bytes.
    create table webhook_events (
      id text primary key,
      tenant_id text not null references tenants(id),
      mode text not null check (mode in ('live', 'test')),
      type text not null,
      payload text not null,
      created_at timestamptz not null
    );
    create index webhook_events_retention on webhook_events (created_at);

    -- One per event and subscribed endpoint. next_attempt_at and locked_until are on the
    -- application's clock; locked_until is the lease of the process sending it (a process that dies
    -- mid-attempt leaves a lease that expires, and the sweep sends again).
    create table webhook_deliveries (
      id text primary key,
      tenant_id text not null,
      mode text not null check (mode in ('live', 'test')),
      endpoint_id text not null references webhook_endpoints(id) on delete cascade,
      event_id text not null references webhook_events(id) on delete cascade,
      event_type text not null,
      status text not null check (status in ('pending', 'succeeded', 'failed')),
      attempt_count integer not null default 0,
      automatic_attempt_count integer not null default 0,
      next_attempt_at timestamptz,
      locked_until timestamptz,
      -- Names the holder of the lease: an attempt that outlived its lease records itself in the log
      -- but does not overwrite the state a later attempt wrote.
      lease_id text,
      last_attempt_at timestamptz,
      last_status_code integer,
      last_error text,
      created_at timestamptz not null,
      updated_at timestamptz not null
    );
    create index webhook_deliveries_listing on webhook_deliveries (tenant_id, mode, endpoint_id, id);
    create index webhook_deliveries_due on webhook_deliveries (next_attempt_at) where status = 'pending';
    create index webhook_deliveries_event on webhook_deliveries (event_id);

    -- The delivery log: every attempt, automatic or replayed. Immutable.
    create table webhook_attempts (
      id text primary key,
      tenant_id text not null,
      mode text not null check (mode in ('live', 'test')),
      delivery_id text not null references webhook_deliveries(id) on delete cascade,
      trigger text not null check (trigger in ('automatic', 'replay')),
      succeeded boolean not null,
      status_code integer,
      response_body text,
      duration_ms integer not null,
      error text,
      attempted_at timestamptz not null
    );
    create index webhook_attempts_delivery on webhook_attempts (delivery_id, id);

    -- usage.threshold_reached is announced once per customer, feature, period and threshold, across
    -- processes and restarts: the insert that wins publishes.
    create table webhook_usage_thresholds (
      tenant_id text not null,
      mode text not null check (mode in ('live', 'test')),
      customer_id text not null,
      feature text not null,
      period_end timestamptz not null,
      threshold_percent integer not null,
      created_at timestamptz not null,
      primary key (tenant_id, mode, customer_id, feature, period_end, threshold_percent)
    );
  `.execute(db);
}
