// The named export: under nodenext the default import types as the CommonJS module object.
import { Decimal } from "decimal.js";

/**
 * The one Decimal constructor money code uses. A private clone, so nothing else in the process can
 * change its precision or rounding through the global `Decimal.set`. `defaults: true` stops the clone
 * from inheriting whatever the global constructor was configured with at import time. The exponent
 * limits make `toString()` always print plain notation ("0.0000001", never "1e-7").
 *
 * 40 significant digits hold the product of a 20-digit quantity and a 20-digit unit price exactly.
 */
export const ExactDecimal = Decimal.clone({
  defaults: true,
  precision: 40,
  rounding: Decimal.ROUND_HALF_UP,
  toExpNeg: -9e15,
  toExpPos: 9e15,
});
export type ExactDecimal = Decimal;

/** What callers may hand us for a decimal: JSON strings ("0.000002") or plain JSON numbers. */
export type DecimalInput = string | number;

export class InvalidDecimalError extends Error {
  readonly input: unknown;

  constructor(input: unknown, reason: string) {
    super(`invalid decimal ${JSON.stringify(String(input))}: ${reason}`);
    this.name = "InvalidDecimalError";
    this.input = input;
  }
}

// Plain decimal notation with an optional exponent. Decimal's own parser also takes hex, binary,
// "Infinity" and "NaN", none of which belong in a price or a quantity.
const decimalPattern = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;
// Longer inputs and larger exponents are garbage or an attack, never a real price or quantity.
const maximumInputLength = 100;
const maximumExponentMagnitude = 1000;

/**
 * Parses a string or a number into an exact decimal. A number goes through its shortest round-trip
 * string (`String(0.1)` is "0.1"), so the float's binary expansion never leaks into money.
 */
export function parseDecimal(input: DecimalInput): ExactDecimal {
  let text: string;
  if (typeof input === "number") {
    if (!Number.isFinite(input)) throw new InvalidDecimalError(input, "not a finite number");
    text = String(input);
  } else if (typeof input === "string") {
    text = input;
  } else {
    throw new InvalidDecimalError(input, "expected a string or a number");
  }
  if (text.length > maximumInputLength) throw new InvalidDecimalError(input, "too long");
  if (!decimalPattern.test(text)) throw new InvalidDecimalError(input, "not a decimal number");
  const value = new ExactDecimal(text);
  if (!value.isZero() && Math.abs(value.e) > maximumExponentMagnitude) {
    throw new InvalidDecimalError(input, "magnitude out of range");
  }
  return value;
}

/** True when `input` is something `parseDecimal` accepts. */
export function isDecimalInput(input: unknown): input is DecimalInput {
  if (typeof input !== "string" && typeof input !== "number") return false;
  try {
    parseDecimal(input);
    return true;
  } catch {
    return false;
  }
}

/**
 * Prints a decimal in plain notation without trailing zeros ("107", "0.000002"). Negative zero
 * prints as "0" so it never shows up on an invoice.
 */
export function formatDecimal(value: ExactDecimal | DecimalInput): string {
  const exact = typeof value === "object" ? new ExactDecimal(value) : parseDecimal(value);
  if (exact.isZero()) return "0";
  return exact.toString();
}
