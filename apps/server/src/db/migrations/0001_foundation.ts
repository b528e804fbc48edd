import { type Kysely, sql } from "kysely";

// Forward-only: never edit a migration that has shipped; add a new one.
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table system_state (
      key text primary key,
      value jsonb not null,
      updated_at timestamptz not null default now()
    );

    create table tenants (
      id text primary key,
      slug text not null unique,
      name text not null,
      settings jsonb not null default '{}',
      created_at timestamptz not null default now()
    );

    create table api_keys (
      id text primary key,
      tenant_id text references tenants(id),
      kind text not null check (kind in ('operator', 'secret', 'consumer')),
      mode text check (mode in ('live', 'test')),
      name text,
      prefix text not null,
      last4 text not null,
      key_hash text not null unique,
      scopes text[] not null default '{*}',
      rate_limits jsonb,
      subscription_id text,
      expires_at timestamptz,
      revoked_at timestamptz,
      rotated_to text,
      created_at timestamptz not null default now(),
      check ((kind = 'operator') = (tenant_id is null)),
      check ((kind = 'operator') = (mode is null))
    );
    create index api_keys_tenant on api_keys (tenant_id, mode, id);

    create table idempotency_requests (
      tenant_id text not null references tenants(id),
      mode text not null,
      key text not null,
      method text not null,
      path text not null,
      body_hash text not null,
      status_code integer,
      response_body text,
      response_headers jsonb,
      created_at timestamptz not null default now(),
      primary key (tenant_id, mode, key)
    );

    create table products (
      id text primary key,
      tenant_id text not null references tenants(id),
      mode text not null check (mode in ('live', 'test')),
      name text not null,
      type text not null,
      description text,
      audience text not null,
      lifecycle text not null,
      status text not null,
      metadata jsonb not null default '{}',
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    );
    create index products_tenant on products (tenant_id, mode, id);

    create table billable_units (
      id text primary key,
      tenant_id text not null references tenants(id),
      mode text not null check (mode in ('live', 'test')),
      key text not null,
      name text not null,
      unit_label text not null,
      aggregation text not null,
      field text,
      filters jsonb not null default '[]',
      status text not null,
      first_used_at timestamptz,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      unique (tenant_id, mode, key)
    );
    create index billable_units_tenant on billable_units (tenant_id, mode, id);

    create table product_billable_units (
      tenant_id text not null,
      mode text not null,
      product_id text not null references products(id),
      billable_unit_id text not null references billable_units(id),
      primary key (product_id, billable_unit_id)
    );
    create index product_billable_units_unit on product_billable_units (billable_unit_id);
  `.execute(db);
}
