import { type Kysely, sql } from "kysely";

// Forward-only: never edit a migration that has shipped; add a new one.
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table customers (
      id text primary key,
      tenant_id text not null references tenants(id),
      mode text not null check (mode in ('live', 'test')),
      name text not null,
      email text not null,
      -- Archived customers keep theirs: events and invoices may still name them by it.
      external_id text,
      currency text not null,
      address jsonb,
      tax jsonb,
      metadata jsonb not null default '{}',
      status text not null check (status in ('ACTIVE', 'ARCHIVED')),
      -- Bumped on every update: the in-memory directory keeps the newest version it has seen.
      version integer not null default 1 check (version >= 1),
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      unique (tenant_id, mode, external_id)
    );
    create index customers_tenant on customers (tenant_id, mode, id);
    create index customers_email on customers (tenant_id, mode, lower(email));
  `.execute(db);
}
