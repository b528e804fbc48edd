import { describe, expect, it } from "vitest";
import type { CustomerAddress } from "../customers/domain.ts";
import { taxContextOf } from "./context.ts";

const address: CustomerAddress = {
  line1: "1 Main St",
  line2: null,
  city: "Albany",
  state: "NY",
  postalCode: "12207",
  country: "US",
};

describe("taxContextOf", () => {
  it("prefers the customer's tax settings", () => {
    const tax = { country: "DE", region: null, exempt: true, taxId: "DE123" };
    expect(taxContextOf({ tax, address })).toEqual({
      country: "DE",
      region: null,
      exempt: true,
      taxId: "DE123",
    });
  });

  it("falls back to the billing address, its state as the region", () => {
    expect(taxContextOf({ tax: null, address })).toEqual({
      country: "US",
      region: "NY",
      exempt: false,
      taxId: null,
    });
    const tax = { country: "US", region: null, exempt: false, taxId: null };
    expect(taxContextOf({ tax, address }).region).toBe("NY");
  });

  it("knows no country when the customer has neither", () => {
    expect(taxContextOf({ tax: null, address: null })).toEqual({
      country: null,
      region: null,
      exempt: false,
      taxId: null,
    });
  });
});
