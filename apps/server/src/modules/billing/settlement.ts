import type { Kysely } from "kysely";
import type { Database } from "../../db/schema.ts";
import type { TenantScope } from "../../http/route-config.ts";
import type { Invoice } from "./domain/invoice.ts";
import { routeAndSettle } from "./domain/pipeline/index.ts";
import type { InvoiceWallets } from "./ports.ts";

/**
 * Settle, inside the finalising transaction (ADR 0015): the wallet (locked there) pays its part.
 * Route and settle run again on the locked wallet, so what was previewed or drafted on an older
 * wallet state cannot overdraw it; on the same state they give the same figures and the same
 * trace. The wallet's movements are keyed by the invoice, and a finalisation happens once (DRAFT →
 * OPEN), so a re-run bill run never debits twice. An invoice the wallet covers entirely is PAID.
 * POSTPAID invoices (or no wallets wired) come back unchanged.
 */
export async function settleWithWallet(
  trx: Kysely<Database>,
  scope: TenantScope,
  invoice: Invoice,
  wallets: InvoiceWallets | undefined,
): Promise<Invoice> {
  if (!wallets) return invoice;
  let settled: ReturnType<typeof routeAndSettle> | undefined;
  const state = await wallets.settleInvoice(trx, scope, invoice, (wallet) => {
    settled = routeAndSettle(invoice.total, wallet);
    return { debitMinor: settled.output.walletDebitMinor, refundMinor: settled.output.walletRefundMinor };
  });
  if (state === null || settled === undefined) return invoice;
  const { creditsApplied, amountDue } = settled.output;
  const trace = [
    ...invoice.trace.filter((entry) => entry.stage !== "route" && entry.stage !== "settle"),
    ...settled.trace,
  ];
  const paidByWallet = amountDue === 0n && creditsApplied > 0n;
  const next: Invoice = {
    ...invoice,
    creditsApplied,
    amountDue,
    trace,
    ...(paidByWallet
      ? { status: "PAID" as const, paidAt: invoice.finalizedAt, paymentMethod: "wallet" }
      : {}),
  };
  await trx
    .updateTable("invoices")
    .set({ credits_applied: creditsApplied, amount_due: amountDue, trace: JSON.stringify(trace) })
    .where("tenant_id", "=", invoice.tenantId)
    .where("mode", "=", invoice.mode)
    .where("id", "=", invoice.id)
    .execute();
  return next;
}
