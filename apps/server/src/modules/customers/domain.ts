import { AforoError, isKnownCurrency } from "@aforo/core";
import type { Mode } from "../../db/schema.ts";

export const customerStatuses = ["ACTIVE", "ARCHIVED"] as const;
/** ARCHIVED is final: the customer stays readable and resolvable (for history) but takes no writes. */
export type CustomerStatus = (typeof customerStatuses)[number];

export interface CustomerAddress {
  line1: string;
  line2: string | null;
  city: string;
  state: string | null;
  postalCode: string;
  /** ISO 3166-1 alpha-2, upper case. */
  country: string;
}

export interface CustomerTax {
  /** ISO 3166-1 alpha-2, upper case. */
  country: string;
  region: string | null;
  exempt: boolean;
  taxId: string | null;
}

export interface Customer {
  id: string;
  tenantId: string;
  mode: Mode;
  name: string;
  email: string;
  /** The tenant's own id for the customer; unique per tenant and mode (archived ones keep theirs). */
  externalId: string | null;
  currency: string;
  address: CustomerAddress | null;
  tax: CustomerTax | null;
  metadata: Record<string, string>;
  status: CustomerStatus;
  /** Starts at 1 and grows with every write; caches keep the highest they have seen. */
  version: number;
  createdAt: Date;
  updatedAt: Date;
}

export interface CreateCustomerInput {
  name: string;
  email: string;
  externalId?: string | null | undefined;
  currency: string;
  address?: CustomerAddress | null | undefined;
  tax?: CustomerTax | null | undefined;
  metadata?: Record<string, string> | undefined;
}

/** Fields given are changed; `null` clears the optional ones; metadata is replaced as a whole. */
export interface UpdateCustomerInput {
  name?: string | undefined;
  email?: string | undefined;
  externalId?: string | null | undefined;
  currency?: string | undefined;
  address?: CustomerAddress | null | undefined;
  tax?: CustomerTax | null | undefined;
  metadata?: Record<string, string> | undefined;
}

/** Currencies are ISO 4217 codes; "usd" is read as "USD", as pricing does. */
export function normalizeCurrency(currency: string): string {
  return currency.trim().toUpperCase();
}

export function requireKnownCurrency(currency: string): void {
  if (!isKnownCurrency(currency)) {
    throw new AforoError("unknown-currency", `'${currency}' is not an ISO 4217 currency Aforo knows.`, {
      errors: [{ field: "currency", message: `'${currency}' is not a known ISO 4217 currency` }],
    });
  }
}

export function newCustomer(
  id: string,
  scope: { tenantId: string; mode: Mode },
  input: CreateCustomerInput,
  now: Date,
): Customer {
  const currency = normalizeCurrency(input.currency);
  requireKnownCurrency(currency);
  return {
    id,
    tenantId: scope.tenantId,
    mode: scope.mode,
    name: input.name,
    email: input.email,
    externalId: input.externalId ?? null,
    currency,
    address: input.address ?? null,
    tax: input.tax ?? null,
    metadata: input.metadata ?? {},
    status: "ACTIVE",
    version: 1,
    createdAt: now,
    updatedAt: now,
  };
}

export function applyUpdate(current: Customer, input: UpdateCustomerInput, now: Date): Customer {
  if (current.status === "ARCHIVED") {
    throw new AforoError("invalid-transition", `Customer '${current.id}' is ARCHIVED and cannot be changed.`);
  }
  const currency = input.currency === undefined ? current.currency : normalizeCurrency(input.currency);
  requireKnownCurrency(currency);
  return {
    ...current,
    name: input.name ?? current.name,
    email: input.email ?? current.email,
    externalId: input.externalId === undefined ? current.externalId : input.externalId,
    currency,
    address: input.address === undefined ? current.address : input.address,
    tax: input.tax === undefined ? current.tax : input.tax,
    metadata: input.metadata ?? current.metadata,
    version: current.version + 1,
    updatedAt: now,
  };
}

export function archived(current: Customer, now: Date): Customer {
  return { ...current, status: "ARCHIVED", version: current.version + 1, updatedAt: now };
}
