import { readFile } from "node:fs/promises";
import {
  AforoError,
  type DecimalInput,
  formatDecimal,
  fromMinorUnits,
  InvalidPlanItemError,
  isDecimalInput,
  isKnownCurrency,
  isRoundingMode,
  type PlanItem,
  validatePlanItems,
} from "@aforo/core";
import type { Command } from "commander";
import { systemClock } from "../clock.ts";
import type { AppContext } from "../context.ts";
import { createContext } from "../context.ts";
import { openDatabase } from "../db/database.ts";
import type { Mode } from "../db/schema.ts";
import {
  type PreviewablePlan,
  type PricePreview,
  previewRatePlan,
} from "../modules/pricing/domain/preview.ts";
import { configOrExit, fail } from "./output.ts";

export interface PriceOptions {
  /** A plan definition file (the body of POST /v1/rate_plans, or a rate plan as the API returns it). */
  plan?: string | undefined;
  tenant?: string | undefined;
  mode?: string | undefined;
  ratePlan?: string | undefined;
  version?: string | number | undefined;
  /** `key=value` pairs. */
  quantity?: string[] | undefined;
  currency?: string | undefined;
  json?: boolean | undefined;
}

export interface PriceDependencies {
  readFile?: (path: string) => Promise<string>;
  /** Opens the services a stored plan is read through; the caller closes them. */
  openContext?: () => Promise<{ context: Pick<AppContext, "tenants" | "pricing">; close(): Promise<void> }>;
}

/** A usage mistake: printed as is, exit code 2. */
export class PriceCommandError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PriceCommandError";
  }
}

export function parseQuantities(pairs: readonly string[]): Record<string, string> {
  const quantities: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf("=");
    const key = pair.slice(0, at).trim();
    const value = pair.slice(at + 1).trim();
    if (at <= 0 || !isDecimalInput(value)) {
      throw new PriceCommandError(
        `--quantity '${pair}': expected <billable unit>=<decimal>, e.g. api_calls=15000`,
      );
    }
    quantities[key] = value;
  }
  return quantities;
}

interface PlanFile {
  currency?: unknown;
  items?: unknown;
  rounding?: unknown;
  minimum_commitment?: unknown;
  maximum_spend?: unknown;
}

function optionalAmount(value: unknown, field: string): string | null {
  if (value === undefined || value === null) return null;
  if (!isDecimalInput(value)) throw new PriceCommandError(`${field} must be a decimal amount`);
  return formatDecimal(value);
}

/** Reads a plan file into what the engine rates; no database, no billable unit catalog. */
export function planFromFile(text: string, currencyOverride: string | undefined): PreviewablePlan {
  let parsed: PlanFile;
  try {
    parsed = JSON.parse(text) as PlanFile;
  } catch (error) {
    throw new PriceCommandError(`The plan file is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof parsed !== "object" || parsed === null)
    throw new PriceCommandError("The plan file must hold an object.");
  const currency = (
    currencyOverride ?? (typeof parsed.currency === "string" ? parsed.currency : "")
  ).toUpperCase();
  if (!isKnownCurrency(currency)) {
    throw new PriceCommandError(
      currency === ""
        ? 'Give the currency (--currency USD or "currency" in the file).'
        : `Unknown currency '${currency}'.`,
    );
  }
  const issues = validatePlanItems(parsed.items);
  if (issues.length > 0) throw new InvalidPlanItemError(issues);
  const rounding = parsed.rounding ?? "half_up";
  if (!isRoundingMode(rounding))
    throw new PriceCommandError("rounding must be half_up, half_even, down or up");
  return {
    currency,
    items: parsed.items as PlanItem[],
    rounding,
    minimum_commitment: optionalAmount(parsed.minimum_commitment, "minimum_commitment"),
    maximum_spend: optionalAmount(parsed.maximum_spend, "maximum_spend"),
  };
}

function columns(rows: string[][]): string {
  const widths = rows[0]?.map((_, index) => Math.max(...rows.map((row) => (row[index] ?? "").length))) ?? [];
  return rows
    .map((row) =>
      row
        .map((cell, index) =>
          index === row.length - 1 ? cell.padStart(widths[index] ?? 0) : cell.padEnd(widths[index] ?? 0),
        )
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

/** A readable table: one row per line, its tiers indented below it, and the total. */
export function formatPreview(title: string, preview: PricePreview): string {
  const money = (amount: number) => fromMinorUnits(BigInt(amount), preview.currency);
  const rows: string[][] = [["BILLABLE UNIT", "MODEL", "QUANTITY", "UNIT PRICE", "AMOUNT"]];
  for (const line of preview.lines) {
    rows.push([
      line.billable_unit ?? "-",
      line.model,
      line.quantity,
      line.unit_price ?? "",
      money(line.amount),
    ]);
    let from = "0";
    for (const tier of line.tiers ?? []) {
      const range = tier.up_to === null ? `  above ${from}` : `  up to ${tier.up_to}`;
      const flat = tier.flat_price ? ` + ${tier.flat_price} flat` : "";
      rows.push([range, "tier", tier.quantity, `${tier.unit_price}${flat}`, tier.amount_decimal]);
      if (tier.up_to !== null) from = tier.up_to;
    }
  }
  rows.push(["TOTAL", "", "", "", `${money(preview.total)} ${preview.currency}`]);
  return `${title}\n\n${columns(rows)}\n`;
}

async function storedPreview(
  options: PriceOptions,
  quantities: Record<string, DecimalInput>,
  deps: PriceDependencies,
) {
  if (!options.tenant || !options.ratePlan) {
    throw new PriceCommandError("Give either --plan <file>, or --tenant <slug> and --rate-plan <id>.");
  }
  const mode = (options.mode ?? "live") as Mode;
  if (mode !== "live" && mode !== "test") throw new PriceCommandError("--mode must be live or test");
  const version = options.version === undefined ? undefined : Number(options.version);
  if (version !== undefined && (!Number.isInteger(version) || version < 1)) {
    throw new PriceCommandError("--version must be a positive whole number");
  }
  if (!deps.openContext) throw new PriceCommandError("No database to read the rate plan from.");
  const opened = await deps.openContext();
  try {
    const tenant = await opened.context.tenants.resolve(options.tenant);
    if (!tenant) throw new PriceCommandError(`No tenant '${options.tenant}'.`);
    const preview = await opened.context.pricing.previewPrice(
      { tenantId: tenant.id, mode },
      options.ratePlan,
      quantities,
      version,
    );
    return {
      title: `Rate plan ${preview.rate_plan_id} version ${preview.version} (${tenant.slug}, ${mode})`,
      preview,
    };
  } finally {
    await opened.close();
  }
}

/**
 * `aforo price`: rates quantities against a plan file (pure: no database) or a stored rate plan
 * (through PricingService, as the price_preview endpoint does). Returns the text to print.
 */
export async function runPrice(options: PriceOptions, deps: PriceDependencies = {}): Promise<string> {
  const quantities = parseQuantities(options.quantity ?? []);
  let title: string;
  let preview: PricePreview;
  if (options.plan) {
    const read = deps.readFile ?? ((path: string) => readFile(path, "utf8"));
    const plan = planFromFile(await read(options.plan), options.currency);
    preview = previewRatePlan(plan, quantities);
    title = `Plan ${options.plan} (${plan.currency})`;
  } else {
    ({ title, preview } = await storedPreview(options, quantities, deps));
  }
  return options.json ? `${JSON.stringify(preview, null, 2)}\n` : formatPreview(title, preview);
}

/** One message for any failure: field-level problems are listed one per line. */
export function describeError(error: unknown): string {
  if (error instanceof AforoError) {
    const fields = (error.errors ?? []).map((issue) => `  ${issue.field}: ${issue.message}`);
    return [error.detail, ...fields].join("\n");
  }
  if (error instanceof InvalidPlanItemError) {
    return [
      "The plan cannot be rated:",
      ...error.issues.map((issue) => `  ${issue.field}: ${issue.message}`),
    ].join("\n");
  }
  return error instanceof Error ? error.message : String(error);
}

async function openStoredContext() {
  const config = configOrExit();
  const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  const context = await createContext(config, database, systemClock);
  return {
    context,
    close: async () => {
      await context.stop();
      await database.close();
    },
  };
}

export function registerPriceCommand(program: Command): void {
  program
    .command("price")
    .description("Rate quantities against a plan file or a stored rate plan, with the billing engine")
    .option("--plan <file>", "a plan definition file (JSON): pure, no database")
    .option("--tenant <slug>", "tenant id or slug of a stored rate plan")
    .option("--mode <mode>", "live or test", "live")
    .option("--rate-plan <id>", "the stored rate plan")
    .option("--version <n>", "the rate plan version (default: latest)")
    .option(
      "--quantity <key=value>",
      "a billable unit and its quantity (repeatable)",
      (value: string, previous: string[]) => [...previous, value],
      [] as string[],
    )
    .option("--currency <code>", "currency of a plan file that names none")
    .option("--json", "print the preview as JSON")
    .action(async (options: PriceOptions) => {
      try {
        process.stdout.write(await runPrice(options, { openContext: openStoredContext }));
      } catch (error) {
        fail(describeError(error), error instanceof PriceCommandError ? 2 : 1);
      }
    });
}
