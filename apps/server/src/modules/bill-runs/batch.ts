import type { Kysely } from "kysely";
import type { Database } from "../../db/schema.ts";
import type { TenantScope } from "../../http/route-config.ts";
import type { PeriodInvoicing, PeriodOutcome, PeriodRequest, PreparedPeriods } from "../billing/ports.ts";
import type { Period } from "../subscriptions/domain/period.ts";
import type { Subscription } from "../subscriptions/domain/subscription.ts";
import type { ClosedPeriods, PeriodClose } from "./closed-periods.ts";
import { type BillRun, periodsToInvoice, withInvoiceIds } from "./domain.ts";
import * as store from "./store.ts";

export interface PageBilling {
  db: Kysely<Database>;
  run: BillRun;
  invoicing: Pick<PeriodInvoicing, "invoicePeriods" | "prepareInvoicePeriods">;
  closedPeriods: ClosedPeriods;
  /** The billable units the subscription's pinned plans bill (they close with its invoice). */
  unitIds(subscription: Subscription): string[];
}

/** A page whose first chunk is being prepared; `finish` writes it and bills the page's other rounds. */
export interface StartedPage {
  finish(progress: store.Progress, onSubscriptionDone: () => void): Promise<void>;
}

/**
 * Bills one page of subscriptions set-wise (invoicing's invoicePeriods, one chunk per call): each
 * subscription's due periods oldest first, in rounds — round k asks for every subscription's k-th
 * due period at once, so a period still sees the one before it invoiced (its carry-over, its
 * promotion count). A round's periods close to usage (here and, announced, in the other
 * processes) before its usage is read; every period invoiced is recorded in billed_periods in one
 * statement per round. Progress counts what succeeded; the first failure is thrown once the
 * round's other periods are recorded (the run fails; the next run bills what is left).
 *
 * The first round is prepared (read and computed) as soon as the page starts, so the run can
 * prepare a page while the previous one is written (`finish`).
 */
export function startPage(
  billing: PageBilling,
  page: readonly Subscription[],
  through: ReadonlyMap<string, Date>,
): StartedPage {
  const { run } = billing;
  const scope: TenantScope = { tenantId: run.tenantId, mode: run.mode };
  const options = { billRunId: run.id };
  const due = page.map((subscription) => ({
    subscription,
    periods: periodsToInvoice(subscription, through.get(subscription.id) ?? null, run.asOf),
  }));
  const roundOf = (round: number) => {
    const batch = due.filter(({ periods }) => periods.length > round);
    const requests: PeriodRequest[] = batch.map(({ subscription, periods }) => ({
      subscriptionId: subscription.id,
      period: periods[round] as Period,
    }));
    const closes: PeriodClose[] = batch.map(({ subscription }, index) => ({
      customerId: subscription.customerId,
      period: (requests[index] as PeriodRequest).period,
      unitIds: billing.unitIds(subscription),
    }));
    return { batch, requests, closes };
  };
  type Round = ReturnType<typeof roundOf>;
  // The periods close to usage before their usage is read (closeForInvoicing says why).
  const prepare = async ({ requests, closes }: Round): Promise<PreparedPeriods | undefined> => {
    if (requests.length === 0) return undefined;
    await billing.closedPeriods.closeForInvoicing(scope, closes);
    const { invoicing } = billing;
    if (!invoicing.prepareInvoicePeriods) return undefined;
    return invoicing.prepareInvoicePeriods(scope, requests, options);
  };
  const first = roundOf(0);
  const prepared = prepare(first);
  // Awaited by finish; a page abandoned after an earlier failure must not reject unobserved.
  prepared.catch(() => undefined);

  const invoice = async (round: Round, ready?: Promise<PreparedPeriods | undefined>) => {
    const started = await (ready ?? prepare(round));
    if (started) return started.commit();
    const { invoicePeriods } = billing.invoicing;
    if (!invoicePeriods) throw new Error("invoicing offers no invoicePeriods");
    return invoicePeriods(scope, round.requests, options);
  };

  return {
    async finish(progress, onSubscriptionDone) {
      let failure: { error: unknown } | undefined;
      for (let round = 0; failure === undefined; round += 1) {
        const current = round === 0 ? first : roundOf(round);
        const { batch, requests } = current;
        if (batch.length === 0) break;
        const outcomes: PeriodOutcome[] = await invoice(current, round === 0 ? prepared : undefined);
        const billed: store.BilledPeriodRow[] = [];
        const created: string[] = [];
        outcomes.forEach((outcome, index) => {
          const entry = batch[index];
          const request = requests[index];
          if (!entry || !request) return;
          if (!outcome.ok) {
            failure ??= { error: outcome.error };
            return;
          }
          billed.push({
            subscriptionId: entry.subscription.id,
            customerId: entry.subscription.customerId,
            periodStart: request.period.start,
            periodEnd: request.period.end,
            billableUnitIds: billing.unitIds(entry.subscription),
            invoiceId: outcome.invoiceId,
            billRunId: run.id,
          });
          if (outcome.created) created.push(outcome.invoiceId);
        });
        // Closed to usage before the read (prepare); recorded, they stay closed after a restart.
        await store.recordBilledPeriods(billing.db, scope, billed);
        progress.periodsInvoiced += billed.length;
        progress.invoicesCreated += created.length;
        progress.invoiceIds = withInvoiceIds(progress.invoiceIds, created);
      }
      if (failure) throw failure.error;
      for (const _ of page) {
        progress.subscriptionsProcessed += 1;
        onSubscriptionDone();
      }
    },
  };
}
