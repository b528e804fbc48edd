import { describe, expect, it } from "vitest";
import {
  applyUpdate,
  type BillingEntityRecord,
  canonicalTimezone,
  formatInvoiceNumber,
  invoiceYear,
  newBillingEntity,
} from "./domain.ts";

const scope = { tenantId: "ten_1", mode: "test" as const };
const now = new Date("2026-05-01T00:00:00Z");

function entity(overrides: Partial<BillingEntityRecord> = {}): BillingEntityRecord {
  return {
    ...newBillingEntity(
      "be_1",
      scope,
      { code: "US", name: "US", legalName: "Acme Inc.", baseCurrency: "usd" },
      true,
      now,
    ),
    ...overrides,
  };
}

describe("billing entity domain", () => {
  it("numbers invoices with at least four digits and grows past 9999", () => {
    expect(formatInvoiceNumber("US", 2026, 1n)).toBe("US-2026-0001");
    expect(formatInvoiceNumber("US", 2026, 9999n)).toBe("US-2026-9999");
    expect(formatInvoiceNumber("US", 2026, 10000n)).toBe("US-2026-10000");
  });

  it("takes the invoice year from the entity's wall clock", () => {
    const newYearsEveUtc = new Date("2026-12-31T23:30:00Z");
    expect(invoiceYear(newYearsEveUtc, "UTC")).toBe(2026);
    expect(invoiceYear(newYearsEveUtc, "Europe/Berlin")).toBe(2027);
    expect(invoiceYear(new Date("2027-01-01T03:00:00Z"), "America/New_York")).toBe(2026);
  });

  it("defaults the prefix to the code, the zone to UTC, and upper-cases the currency", () => {
    expect(entity()).toMatchObject({ invoicePrefix: "US", timezone: "UTC", baseCurrency: "USD" });
  });

  it("keeps the zone's IANA name as given, capitalised, rather than Intl's alias", () => {
    expect(canonicalTimezone("Asia/Kolkata")).toBe("Asia/Kolkata");
    expect(canonicalTimezone("asia/kolkata")).toBe("Asia/Kolkata");
    expect(canonicalTimezone("utc")).toBe("UTC");
    expect(canonicalTimezone("America/New_York")).toBe("America/New_York");
  });

  it("refuses unknown time zones and currencies with 422", () => {
    expect(canonicalTimezone("Europe/Paris")).toBe("Europe/Paris");
    expect(() => canonicalTimezone("Mars/Olympus")).toThrow(expect.objectContaining({ status: 422 }));
    // Offsets ignore daylight saving: they are not zones a seller's midnights could follow.
    expect(() => canonicalTimezone("+05:30")).toThrow(expect.objectContaining({ status: 422 }));
    expect(() =>
      newBillingEntity(
        "be_2",
        scope,
        { code: "XX", name: "X", legalName: "X", baseCurrency: "ABC" },
        false,
        now,
      ),
    ).toThrow(expect.objectContaining({ slug: "unknown-currency" }));
  });

  it("keeps code and base currency immutable, but accepts them unchanged", () => {
    expect(() => applyUpdate(entity(), { code: "EU" }, false, now)).toThrow(
      expect.objectContaining({ status: 422 }),
    );
    expect(() => applyUpdate(entity(), { baseCurrency: "EUR" }, false, now)).toThrow(
      expect.objectContaining({ status: 422 }),
    );
    expect(
      applyUpdate(entity(), { code: "US", baseCurrency: "usd", name: "United States" }, false, now).name,
    ).toBe("United States");
  });

  it("freezes the invoice prefix once a number was issued with it", () => {
    expect(applyUpdate(entity(), { invoicePrefix: "USA" }, false, now).invoicePrefix).toBe("USA");
    expect(() => applyUpdate(entity(), { invoicePrefix: "USA" }, true, now)).toThrow(
      expect.objectContaining({ status: 422 }),
    );
  });

  it("never unsets the default flag directly", () => {
    expect(() => applyUpdate(entity({ isDefault: true }), { isDefault: false }, false, now)).toThrow(
      expect.objectContaining({ status: 422 }),
    );
    expect(applyUpdate(entity({ isDefault: false }), { isDefault: true }, false, now).isDefault).toBe(true);
  });
});
