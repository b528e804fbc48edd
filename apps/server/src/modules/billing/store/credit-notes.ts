import type { Kysely, Selectable } from "kysely";
import { fetchPage, type Page, type PageRequest } from "../../../db/pagination.ts";
import type { Database, Mode } from "../../../db/schema.ts";
import type { TenantScope } from "../../../http/route-config.ts";
import type { CreditNotesTable } from "../tables.ts";

export interface CreditNote {
  id: string;
  tenantId: string;
  mode: Mode;
  invoiceId: string;
  customerId: string;
  currency: string;
  amountMinor: bigint;
  reason: string;
  description: string | null;
  status: "ISSUED";
  createdAt: Date;
}

function fromDb(row: Selectable<CreditNotesTable>): CreditNote {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    mode: row.mode,
    invoiceId: row.invoice_id,
    customerId: row.customer_id,
    currency: row.currency,
    amountMinor: BigInt(row.amount),
    reason: row.reason,
    description: row.description,
    status: "ISSUED",
    createdAt: new Date(row.created_at),
  };
}

export async function insertCreditNote(db: Kysely<Database>, note: CreditNote): Promise<void> {
  await db
    .insertInto("credit_notes")
    .values({
      id: note.id,
      tenant_id: note.tenantId,
      mode: note.mode,
      invoice_id: note.invoiceId,
      customer_id: note.customerId,
      currency: note.currency,
      amount: note.amountMinor,
      reason: note.reason,
      description: note.description,
      status: note.status,
      created_at: note.createdAt,
    })
    .execute();
}

export async function findCreditNote(
  db: Kysely<Database>,
  scope: TenantScope,
  id: string,
): Promise<CreditNote | undefined> {
  const row = await db
    .selectFrom("credit_notes")
    .selectAll()
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("id", "=", id)
    .executeTakeFirst();
  return row && fromDb(row);
}

export async function listCreditNotes(
  db: Kysely<Database>,
  scope: TenantScope,
  filter: { invoiceId?: string | undefined },
  page: PageRequest,
): Promise<Page<CreditNote>> {
  let query = db
    .selectFrom("credit_notes")
    .selectAll()
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode);
  if (filter.invoiceId) query = query.where("invoice_id", "=", filter.invoiceId);
  const rows = await fetchPage(query, "id", page);
  return { data: rows.data.map(fromDb), has_more: rows.has_more };
}
