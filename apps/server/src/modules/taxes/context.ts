import type { TaxContext } from "../billing/ports.ts";
import type { Customer } from "../customers/domain.ts";

/**
 * Where a customer is taxed: its tax settings first, its billing address otherwise. The region
 * comes from the tax settings, or from the address's state when the address is in that country.
 */
export function taxContextOf(customer: Pick<Customer, "tax" | "address">): TaxContext {
  const { tax, address } = customer;
  const country = tax?.country ?? address?.country ?? null;
  const addressRegion = address && address.country === country ? address.state : null;
  return {
    country,
    region: tax?.region ?? addressRegion ?? null,
    exempt: tax?.exempt ?? false,
    taxId: tax?.taxId ?? null,
  };
}
