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
  /** What each period's invoice closes to usage: the units the plans in force at its end bill. */
  closesFor(
    scope: TenantScope,
    entries: ReadonlyArray<{ subscription: Subscription; period: Period }>,
  ): Promise<PeriodClose[]>;
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
    return { batch, requests };
  };
  type Round = ReturnType<typeof roundOf>;
  interface Ready {
    prepared: PreparedPeriods | undefined;
    /** What each period closed to usage (in the round's order); billed_periods records it. */
    closes: PeriodClose[];
  }
  // The periods close to usage before their usage is read (closeForInvoicing says why).
  const prepare = async ({ batch, requests }: Round): Promise<Ready> => {
    if (requests.length === 0) return { prepared: undefined, closes: [] };
    const closes = await billing.closesFor(
      scope,
      batch.map(({ subscription }, index) => ({
        subscription,
        period: (requests[index] as PeriodRequest).period,
      })),
    );
    await billing.closedPeriods.closeForInvoicing(scope, closes);
    const { invoicing } = billing;
    if (!invoicing.prepareInvoicePeriods) return { prepared: undefined, closes };
    return { prepared: await invoicing.prepareInvoicePeriods(scope, requests, options), closes };
  };
  const first = roundOf(0);
  const ready = prepare(first);
  // Awaited by finish; a page abandoned after an earlier failure must not reject unobserved.
  ready.catch(() => undefined);

  const invoice = async (round: Round, early?: Promise<Ready>) => {
    const { prepared, closes } = await (early ?? prepare(round));
    if (prepared) return { outcomes: await prepared.commit(), closes };
    const { invoicePeriods } = billing.invoicing;
    if (!invoicePeriods) throw new Error("invoicing offers no invoicePeriods");
    return { outcomes: await invoicePeriods(scope, round.requests, options), closes };
  };

  return {
    async finish(progress, onSubscriptionDone) {
      let failure: { error: unknown } | undefined;
      for (let round = 0; failure === undefined; round += 1) {
        const current = round === 0 ? first : roundOf(round);
        const { batch, requests } = current;
        if (batch.length === 0) break;
        const { outcomes, closes } = await invoice(current, round === 0 ? ready : undefined);
        const billed: store.BilledPeriodRow[] = [];
        const created: string[] = [];
        outcomes.forEach((outcome: PeriodOutcome, index) => {
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
            billableUnitIds: [...(closes[index]?.unitIds ?? [])],
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
