import { type Kysely, sql } from "kysely";

// Forward-only: never edit a migration that has shipped; add a new one.
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table billing_entities (
      id text primary key,
      tenant_id text not null references tenants(id),
      mode text not null check (mode in ('live', 'test')),
      code text not null,
      name text not null,
      legal_name text not null,
      base_currency text not null,
      timezone text not null,
      invoice_prefix text not null,
      is_default boolean not null default false,
      address jsonb,
      tax_id text,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      unique (tenant_id, mode, code),
      -- Two entities with one prefix would print the same invoice numbers.
      unique (tenant_id, mode, invoice_prefix)
    );
    -- At most one default per tenant and mode; the service keeps it at exactly one.
    create unique index billing_entities_one_default on billing_entities (tenant_id, mode) where is_default;
    create index billing_entities_listing on billing_entities (tenant_id, mode, id);

    -- Gapless invoice numbers: the row is upserted inside the finalising transaction, so a
    -- rollback takes its number back with it.
    create table invoice_sequences (
      billing_entity_id text not null references billing_entities(id),
      year integer not null,
      tenant_id text not null,
      mode text not null,
      last_number bigint not null check (last_number >= 1),
      primary key (billing_entity_id, year)
    );

    create table tax_rates (
      id text primary key,
      tenant_id text not null references tenants(id),
      mode text not null check (mode in ('live', 'test')),
      name text not null,
      country text not null,
      region text,
      percent numeric not null check (percent >= 0 and percent <= 100),
      inclusive boolean not null default false,
      active boolean not null default true,
      description text,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    );
    create index tax_rates_listing on tax_rates (tenant_id, mode, id);
  `.execute(db);
}
