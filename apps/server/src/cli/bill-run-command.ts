import { fromMinorUnits } from "@aforo/core";
import cliProgress from "cli-progress";
import { type Command, InvalidArgumentError } from "commander";
import type { Mode } from "../db/schema.ts";
import { toApi } from "../modules/bill-runs/routes/index.ts";
import { printJson } from "./output.ts";
import { modeOption, printFields, printTable, withContext } from "./with-context.ts";

function parseDate(value: string): Date {
  const date = new Date(value);
  if (Number.isNaN(date.getTime()))
    throw new InvalidArgumentError("must be a date or an RFC 3339 timestamp.");
  return date;
}

/**
 * `aforo bill-run`: invoices every period that ended by --as-of for one tenant and mode, in this
 * process (the database directly), with a progress bar on stderr and a summary on stdout.
 */
export function registerBillRunCommand(program: Command): void {
  program
    .command("bill-run")
    .description("Invoice every subscription period that ended by --as-of (works on the database directly)")
    .requiredOption("--tenant <id|slug>", "tenant id (ten_…) or slug")
    .addOption(modeOption())
    .option("--as-of <date>", "invoice the periods that ended by then (default: now)", parseDate)
    .option("--json", "print the run as JSON (the HTTP API's representation, plus totals)")
    .action((options: { tenant: string; mode: Mode; asOf?: Date; json?: boolean }) =>
      withContext(async (context) => {
        const tenant = await context.tenants.get(options.tenant);
        const scope = { tenantId: tenant.id, mode: options.mode };
        const startedMs = Date.now();
        const bar = options.json
          ? undefined
          : new cliProgress.SingleBar(
              {
                format: "subscriptions {bar} {value}/{total} | invoices created {invoices}",
                hideCursor: true,
              },
              cliProgress.Presets.shades_classic,
            );
        let barStarted = false;
        const run = await context.billRuns.startRun(scope, {
          asOf: options.asOf,
          execution: "inline",
          onProgress: (progress) => {
            if (!bar) return;
            if (!barStarted) {
              bar.start(progress.subscriptionsTotal, 0, { invoices: 0 });
              barStarted = true;
            }
            bar.update(progress.subscriptionsProcessed, { invoices: progress.invoicesCreated });
          },
        });
        bar?.stop();
        const durationMs = Date.now() - startedMs;
        const totals = await context.billRuns.totals(scope, run.id);
        if (options.json) {
          printJson({
            ...toApi(run),
            duration_ms: durationMs,
            totals: totals.map((total) => ({
              currency: total.currency,
              invoices: total.invoices,
              amount: fromMinorUnits(total.totalMinor, total.currency),
            })),
          });
        } else {
          printFields([
            ["bill run", run.id],
            ["status", run.status],
            ["as of", run.asOf.toISOString()],
            ["subscriptions", String(run.subscriptionsProcessed)],
            ["periods invoiced", String(run.periodsInvoiced)],
            ["invoices created", String(run.invoicesCreated)],
            ["duration", `${(durationMs / 1000).toFixed(1)} s`],
          ]);
          if (totals.length > 0) {
            process.stdout.write("\n");
            printTable(
              ["CURRENCY", "INVOICES", "TOTAL"],
              totals.map((total) => [
                total.currency,
                String(total.invoices),
                fromMinorUnits(total.totalMinor, total.currency),
              ]),
            );
          }
        }
        if (run.status === "FAILED") throw new Error(`the bill run failed: ${run.error ?? "unknown error"}`);
      }),
    );
}
