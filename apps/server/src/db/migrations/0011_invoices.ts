import { type Kysely, sql } from "kysely";

// Forward-only: never edit a migration that has shipped; add a new one.
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    -- Money columns are bigint minor units of the invoice currency.
    create table invoices (
      id text primary key,
      tenant_id text not null references tenants(id),
      mode text not null check (mode in ('live', 'test')),
      number text,
      status text not null check (status in ('DRAFT', 'OPEN', 'PAID', 'OVERDUE', 'UNCOLLECTIBLE', 'VOID')),
      customer_id text not null,
      subscription_id text not null references subscriptions(id),
      billing_entity_id text,
      currency text not null,
      period_start timestamptz not null,
      period_end timestamptz not null,
      subtotal bigint not null,
      discount_total bigint not null,
      tax_total bigint not null,
      tax_included bigint not null default 0,
      tax_breakdown jsonb not null default '[]',
      credits_applied bigint not null default 0,
      credit_notes_total bigint not null default 0,
      total bigint not null,
      amount_due bigint not null,
      amount_paid bigint not null default 0,
      payment_method text,
      promotion_id text,
      trace jsonb not null default '[]',
      issued_at timestamptz,
      due_at timestamptz,
      finalized_at timestamptz,
      paid_at timestamptz,
      voided_at timestamptz,
      marked_uncollectible_at timestamptz,
      bill_run_id text,
      created_at timestamptz not null default now(),
      -- A subscription period is invoiced once, whatever runs concurrently.
      unique (tenant_id, mode, subscription_id, period_start)
    );
    create index invoices_listing on invoices (tenant_id, mode, id);
    create index invoices_customer on invoices (tenant_id, mode, customer_id, id);
    create index invoices_overdue on invoices (due_at) where status = 'OPEN';

    create table invoice_lines (
      tenant_id text not null,
      mode text not null,
      invoice_id text not null references invoices(id),
      position integer not null,
      type text not null check (type in ('CHARGE', 'USAGE_FEE', 'SETUP_FEE', 'DISCOUNT', 'TAX_ADJUSTMENT', 'CREDIT', 'PRORATION')),
      description text not null,
      billable_unit text,
      rate_plan_id text,
      model text,
      quantity numeric not null,
      unit_price numeric,
      amount_decimal numeric not null,
      amount bigint not null,
      tax_amount bigint not null default 0,
      tiers jsonb,
      period_start timestamptz not null,
      period_end timestamptz not null,
      primary key (invoice_id, position)
    );

    create table credit_notes (
      id text primary key,
      tenant_id text not null references tenants(id),
      mode text not null check (mode in ('live', 'test')),
      invoice_id text not null references invoices(id),
      customer_id text not null,
      currency text not null,
      amount bigint not null check (amount > 0),
      reason text not null,
      description text,
      status text not null default 'ISSUED',
      created_at timestamptz not null default now()
    );
    create index credit_notes_listing on credit_notes (tenant_id, mode, id);
    create index credit_notes_invoice on credit_notes (tenant_id, mode, invoice_id, id);

    -- Allowance a subscription carries into the period starting at period_start, per unit key;
    -- written by the invoice of the period before it, read by the next period's invoice.
    create table subscription_rollovers (
      tenant_id text not null,
      mode text not null,
      subscription_id text not null references subscriptions(id),
      billable_unit text not null,
      period_start timestamptz not null,
      quantity numeric not null,
      invoice_id text not null references invoices(id),
      primary key (tenant_id, mode, subscription_id, billable_unit, period_start)
    );
  `.execute(db);
}
