import { type Kysely, sql } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    -- The audit trail of canAccess decisions (sampled, or every decision for chosen customers).
    create table entitlement_decisions (
      id text primary key,
      tenant_id text not null,
      mode text not null,
      customer_id text not null,
      feature text not null,
      quantity numeric not null,
      decision text not null,
      reason text not null,
      remaining numeric,
      consumed boolean not null,
      decided_at timestamptz not null
    );
    create index entitlement_decisions_listing on entitlement_decisions (tenant_id, mode, id);
    create index entitlement_decisions_customer on entitlement_decisions (tenant_id, mode, customer_id, id);

    create table entitlement_audit_settings (
      tenant_id text not null,
      mode text not null,
      sample_rate numeric not null default 0,
      customer_ids text[] not null default '{}',
      updated_at timestamptz not null default now(),
      primary key (tenant_id, mode)
    );
  `.execute(db);
}
