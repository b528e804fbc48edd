import { AforoError, type DecimalInput, ExactDecimal, formatDecimal, parseDecimal } from "@aforo/core";
import type { Mode } from "../../db/schema.ts";
import type { LineTax, TaxableLine, TaxContext, TaxResult } from "../billing/ports.ts";

/** Percent digits kept after the point: 8.875 % (New York City) needs three; six is generous. */
const MAX_PERCENT_DECIMALS = 6;

export interface TaxRate {
  id: string;
  tenantId: string;
  mode: Mode;
  name: string;
  /** ISO 3166-1 alpha-2, upper case. */
  country: string;
  /** State or province ("NY", "CA"); null for a country-wide rate. */
  region: string | null;
  /** Decimal string, 0..100. */
  percent: string;
  inclusive: boolean;
  active: boolean;
  description: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface CreateTaxRateInput {
  name: string;
  country: string;
  region?: string | null | undefined;
  percent: DecimalInput;
  inclusive?: boolean | undefined;
  active?: boolean | undefined;
  description?: string | null | undefined;
}

export interface UpdateTaxRateInput {
  name?: string | undefined;
  country?: string | undefined;
  region?: string | null | undefined;
  percent?: DecimalInput | undefined;
  inclusive?: boolean | undefined;
  active?: boolean | undefined;
  description?: string | null | undefined;
}

/** The percent as a canonical decimal string, or a 422 when it is outside 0..100. */
export function normalizePercent(input: DecimalInput): string {
  const value = parseDecimal(input);
  const problems: string[] = [];
  if (value.isNegative() || value.greaterThan(100)) problems.push("must lie between 0 and 100");
  if (value.decimalPlaces() > MAX_PERCENT_DECIMALS)
    problems.push(`has more than ${MAX_PERCENT_DECIMALS} decimal places`);
  if (problems.length > 0) {
    throw new AforoError("unprocessable-entity", `percent ${problems.join(" and ")}.`, {
      errors: problems.map((message) => ({ field: "percent", message })),
    });
  }
  return formatDecimal(value);
}

/** Regions compare ignoring case and surrounding blanks; an empty one means country-wide. */
export function normalizeRegion(region: string | null | undefined): string | null {
  const trimmed = region?.trim().toUpperCase();
  return trimmed ? trimmed : null;
}

export function newTaxRate(
  id: string,
  scope: { tenantId: string; mode: Mode },
  input: CreateTaxRateInput,
  now: Date,
): TaxRate {
  return {
    id,
    tenantId: scope.tenantId,
    mode: scope.mode,
    name: input.name,
    country: input.country,
    region: normalizeRegion(input.region),
    percent: normalizePercent(input.percent),
    inclusive: input.inclusive ?? false,
    active: input.active ?? true,
    description: input.description ?? null,
    createdAt: now,
    updatedAt: now,
  };
}

/**
 * Every field may change: invoices copy a rate's name and percent when they are computed, so an
 * edit never rewrites an issued invoice; it applies to invoices computed afterwards.
 */
export function applyUpdate(current: TaxRate, input: UpdateTaxRateInput, now: Date): TaxRate {
  return {
    ...current,
    name: input.name ?? current.name,
    country: input.country ?? current.country,
    region: input.region === undefined ? current.region : normalizeRegion(input.region),
    percent: input.percent === undefined ? current.percent : normalizePercent(input.percent),
    inclusive: input.inclusive ?? current.inclusive,
    active: input.active ?? current.active,
    description: input.description === undefined ? current.description : input.description,
    updatedAt: now,
  };
}

/**
 * The rates that apply to a buyer, from a scope's active rates:
 * - exempt, or no known country: none;
 * - rates of the buyer's region, if any: all of them and nothing country-wide. That fits US sales
 *   tax (a state rate stands alone) and a VAT country with regional rates. Where a country-wide
 *   and a regional tax add up (Canada: GST plus PST), define both as rates of the region;
 * - else the country-wide rates (EU VAT), all of them.
 * Every rate applies to the line's net amount (no tax on tax: compound rules are out of scope).
 */
export function matchingRates(rates: readonly TaxRate[], context: TaxContext): TaxRate[] {
  if (context.exempt || !context.country) return [];
  const country = context.country.toUpperCase();
  const region = normalizeRegion(context.region);
  const inCountry = rates.filter((rate) => rate.active && rate.country === country);
  const regional = region === null ? [] : inCountry.filter((rate) => rate.region === region);
  return regional.length > 0 ? regional : inCountry.filter((rate) => rate.region === null);
}

export function jurisdictionOf(rate: Pick<TaxRate, "country" | "region">): string {
  return rate.region ? `${rate.country}-${rate.region}` : rate.country;
}

function roundHalfUp(value: ExactDecimal): bigint {
  const whole = value.toDecimalPlaces(0, ExactDecimal.ROUND_HALF_UP);
  return BigInt(whole.isZero() ? "0" : whole.toString());
}

/**
 * The tax of each rate on one line, in minor units, rounded half up per line and rate.
 * Exclusive: amount × p / 100. Inclusive: the amount holds the net plus every inclusive tax, so
 * net = amount / (1 + Σp/100) and each inclusive tax is net × p / 100 (with one rate:
 * amount − amount / (1 + p/100)). Exclusive rates beside inclusive ones apply to that net.
 */
export function taxLine(line: TaxableLine, rates: readonly TaxRate[]): LineTax[] {
  const amount = new ExactDecimal(line.amountMinor.toString());
  const inclusivePercent = rates
    .filter((rate) => rate.inclusive)
    .reduce((sum, rate) => sum.plus(rate.percent), new ExactDecimal(0));
  // amount × p / (100 + Σp) is net × p / 100 with a single division, so ties stay exact.
  const divisor = inclusivePercent.plus(100);
  return rates.map((rate) => ({
    lineId: line.lineId,
    name: rate.name,
    jurisdiction: jurisdictionOf(rate),
    ratePercent: rate.percent,
    inclusive: rate.inclusive,
    taxMinor: roundHalfUp(amount.times(rate.percent).div(divisor)),
  }));
}

/** The whole computation, pure: what TaxService.calculate returns for already-loaded rates. */
export function computeTax(
  rates: readonly TaxRate[],
  context: TaxContext,
  lines: readonly TaxableLine[],
): TaxResult {
  const applicable = matchingRates(rates, context);
  const result: TaxResult = { lines: [], exclusiveTaxMinor: 0n, inclusiveTaxMinor: 0n };
  if (applicable.length === 0) return result;
  for (const line of lines) {
    for (const tax of taxLine(line, applicable)) {
      result.lines.push(tax);
      if (tax.inclusive) result.inclusiveTaxMinor += tax.taxMinor;
      else result.exclusiveTaxMinor += tax.taxMinor;
    }
  }
  return result;
}
