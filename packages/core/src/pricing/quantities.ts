import { type DecimalInput, type ExactDecimal, InvalidDecimalError, parseDecimal } from "../money/index.ts";
import { InvalidQuantityError } from "./errors.ts";

/** Parses a quantity (or allowance) and rejects negatives: usage never runs backwards. */
export function parseQuantity(input: DecimalInput, field = "quantity"): ExactDecimal {
  let value: ExactDecimal;
  try {
    value = parseDecimal(input);
  } catch (error) {
    if (error instanceof InvalidDecimalError) throw new InvalidQuantityError(field, error.message);
    throw error;
  }
  if (value.isNegative() && !value.isZero()) throw new InvalidQuantityError(field, "must not be negative");
  // "-0" is zero; normalise so it never prints with a sign.
  return value.abs();
}
