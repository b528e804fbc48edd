import { currencyExponent } from "./currencies.ts";
import { type DecimalInput, ExactDecimal, parseDecimal } from "./decimal.ts";

/**
 * How an exact amount becomes whole minor units. Directions are about magnitude, so negative amounts
 * mirror positive ones:
 * - `half_up`: nearest, ties away from zero (2.345 → 2.35, -2.345 → -2.35). The default.
 * - `half_even`: nearest, ties to the even digit (banker's rounding: 2.345 → 2.34, 2.355 → 2.36).
 * - `down`: toward zero (truncate).
 * - `up`: away from zero.
 */
export type RoundingMode = "half_up" | "half_even" | "down" | "up";

export const defaultRoundingMode: RoundingMode = "half_up";

const roundingModes: readonly RoundingMode[] = ["half_up", "half_even", "down", "up"];

export function isRoundingMode(value: unknown): value is RoundingMode {
  return typeof value === "string" && (roundingModes as readonly string[]).includes(value);
}

function decimalRounding(mode: RoundingMode) {
  switch (mode) {
    case "half_up":
      return ExactDecimal.ROUND_HALF_UP;
    case "half_even":
      return ExactDecimal.ROUND_HALF_EVEN;
    case "down":
      return ExactDecimal.ROUND_DOWN;
    case "up":
      return ExactDecimal.ROUND_UP;
    default:
      throw new TypeError(`unknown rounding mode ${JSON.stringify(mode)}`);
  }
}

/** Rounds an exact amount once to whole minor units of the currency: (2.469134, USD) → 247n. */
export function toMinorUnits(
  amount: ExactDecimal | DecimalInput,
  currency: string,
  mode: RoundingMode = defaultRoundingMode,
): bigint {
  const exact = typeof amount === "object" ? new ExactDecimal(amount) : parseDecimal(amount);
  const scaled = exact.times(new ExactDecimal(10).pow(currencyExponent(currency)));
  const whole = scaled.toDecimalPlaces(0, decimalRounding(mode));
  // The clone never prints exponents, so this is a plain integer string BigInt accepts.
  return BigInt(whole.isZero() ? "0" : whole.toString());
}

/**
 * Turns minor units back into a decimal string with exactly the currency's digits:
 * (10700n, USD) → "107.00", (5n, JPY) → "5", (-1234n, KWD) → "-1.234". String work on the bigint's
 * digits, so no precision is ever lost.
 */
export function fromMinorUnits(amountMinor: bigint, currency: string): string {
  const exponent = currencyExponent(currency);
  const negative = amountMinor < 0n;
  const digits = (negative ? -amountMinor : amountMinor).toString();
  if (exponent === 0) return (negative ? "-" : "") + digits;
  const padded = digits.padStart(exponent + 1, "0");
  const whole = padded.slice(0, padded.length - exponent);
  const fraction = padded.slice(padded.length - exponent);
  return `${negative ? "-" : ""}${whole}.${fraction}`;
}
