import { AforoError, isKnownCurrency } from "@aforo/core";
import { Temporal } from "temporal-polyfill";
import type { Mode } from "../../db/schema.ts";
import type { BillingEntity } from "../billing/ports.ts";

export type { BillingEntity } from "../billing/ports.ts";

/** Upper case, starts with a letter, 2 to 16 characters: "US", "EU", "DEFAULT". */
export const CODE_PATTERN = "^[A-Z][A-Z0-9_]{1,15}$";
export const INVOICE_PREFIX_PATTERN = "^[A-Za-z0-9][A-Za-z0-9_-]{0,23}$";

export interface BillingEntityRecord extends BillingEntity {
  createdAt: Date;
  updatedAt: Date;
}

export interface CreateBillingEntityInput {
  code: string;
  name: string;
  legalName: string;
  baseCurrency: string;
  timezone?: string | undefined;
  invoicePrefix?: string | undefined;
  isDefault?: boolean | undefined;
  address?: Record<string, string> | null | undefined;
  taxId?: string | null | undefined;
}

/** Fields given are changed; `null` clears address and tax_id. Code and base currency never change. */
export interface UpdateBillingEntityInput {
  code?: string | undefined;
  baseCurrency?: string | undefined;
  name?: string | undefined;
  legalName?: string | undefined;
  timezone?: string | undefined;
  invoicePrefix?: string | undefined;
  isDefault?: boolean | undefined;
  address?: Record<string, string> | null | undefined;
  taxId?: string | null | undefined;
}

function unprocessable(field: string, message: string): AforoError {
  return new AforoError("unprocessable-entity", `${field} ${message}.`, { errors: [{ field, message }] });
}

/**
 * The zone's name with IANA's capitalisation ("utc" → "UTC", "asia/kolkata" → "Asia/Kolkata"), or a
 * 422 when it is not an IANA zone (offsets such as "+05:30" are not: they ignore daylight saving).
 * Temporal keeps the name given; Intl would swap it for its own alias ("Asia/Calcutta").
 */
export function canonicalTimezone(timezone: string): string {
  const refused = () => unprocessable("timezone", `'${timezone}' is not an IANA time zone`);
  if (/^[+\-\u2212]/.test(timezone.trim())) throw refused();
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: timezone });
    return Temporal.Instant.fromEpochMilliseconds(0).toZonedDateTimeISO(timezone).timeZoneId;
  } catch {
    throw refused();
  }
}

export function normalizeCurrency(currency: string): string {
  const code = currency.trim().toUpperCase();
  if (!isKnownCurrency(code)) {
    throw new AforoError("unknown-currency", `'${currency}' is not an ISO 4217 currency Aforo knows.`, {
      errors: [{ field: "base_currency", message: `'${currency}' is not a known ISO 4217 currency` }],
    });
  }
  return code;
}

export function newBillingEntity(
  id: string,
  scope: { tenantId: string; mode: Mode },
  input: CreateBillingEntityInput,
  isDefault: boolean,
  now: Date,
): BillingEntityRecord {
  return {
    id,
    tenantId: scope.tenantId,
    mode: scope.mode,
    code: input.code,
    name: input.name,
    legalName: input.legalName,
    baseCurrency: normalizeCurrency(input.baseCurrency),
    timezone: canonicalTimezone(input.timezone ?? "UTC"),
    invoicePrefix: input.invoicePrefix ?? input.code,
    isDefault,
    address: input.address ?? null,
    taxId: input.taxId ?? null,
    createdAt: now,
    updatedAt: now,
  };
}

/**
 * The entity after an update. `hasIssuedNumbers`: once an invoice number was issued its prefix is
 * frozen, or a later entity could take the old prefix and print numbers that already exist.
 */
export function applyUpdate(
  current: BillingEntityRecord,
  input: UpdateBillingEntityInput,
  hasIssuedNumbers: boolean,
  now: Date,
): BillingEntityRecord {
  if (input.code !== undefined && input.code !== current.code)
    throw unprocessable("code", "is immutable once the billing entity exists");
  if (input.baseCurrency !== undefined && input.baseCurrency.trim().toUpperCase() !== current.baseCurrency)
    throw unprocessable("base_currency", "is immutable once the billing entity exists");
  if (input.isDefault === false && current.isDefault)
    throw unprocessable("is_default", "cannot be unset: make another billing entity the default instead");
  const prefix = input.invoicePrefix ?? current.invoicePrefix;
  if (prefix !== current.invoicePrefix && hasIssuedNumbers)
    throw unprocessable("invoice_prefix", "cannot change after invoice numbers were issued with it");
  return {
    ...current,
    name: input.name ?? current.name,
    legalName: input.legalName ?? current.legalName,
    timezone: input.timezone === undefined ? current.timezone : canonicalTimezone(input.timezone),
    invoicePrefix: prefix,
    isDefault: current.isDefault || input.isDefault === true,
    address: input.address === undefined ? current.address : input.address,
    taxId: input.taxId === undefined ? current.taxId : input.taxId,
    updatedAt: now,
  };
}

/** The calendar year of `at` on the entity's wall clock: numbering restarts at its New Year. */
export function invoiceYear(at: Date, timezone: string): number {
  const year = new Intl.DateTimeFormat("en-US", { timeZone: timezone, year: "numeric" }).format(at);
  return Number(year);
}

/** `US-2026-0001`: four digits at least, more once a year passes 9999 invoices. */
export function formatInvoiceNumber(prefix: string, year: number, sequence: bigint): string {
  return `${prefix}-${year}-${sequence.toString().padStart(4, "0")}`;
}
