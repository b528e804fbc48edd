import { describe, expect, it } from "vitest";
import { CustomerDirectory } from "./directory.ts";
import type { Customer } from "./domain.ts";

function customer(overrides: Partial<Customer> = {}): Customer {
  return {
    id: "cus_1",
    tenantId: "ten_a",
    mode: "test",
    name: "Acme",
    email: "a@example.com",
    externalId: "ext-1",
    currency: "USD",
    address: null,
    tax: null,
    metadata: {},
    status: "ACTIVE",
    version: 1,
    createdAt: new Date(0),
    updatedAt: new Date(0),
    ...overrides,
  };
}

const scope = { tenantId: "ten_a", mode: "test" as const };

describe("CustomerDirectory", () => {
  it("never lets a stale version overwrite a newer one (notifications arrive out of order)", () => {
    const directory = new CustomerDirectory();
    directory.put(customer({ version: 2, name: "New", externalId: "ext-2" }));
    expect(directory.put(customer({ version: 1, name: "Old", externalId: "ext-1" }))).toBe(false);
    expect(directory.resolve(scope, "cus_1")?.name).toBe("New");
    expect(directory.resolve(scope, "ext-1")).toBeUndefined();
    expect(directory.resolve(scope, "ext-2")?.id).toBe("cus_1");
  });

  it("keeps an external id another customer took meanwhile when the old holder's move arrives late", () => {
    const directory = new CustomerDirectory();
    directory.put(customer());
    directory.put(customer({ id: "cus_2", externalId: "ext-1" }));
    directory.put(customer({ version: 2, externalId: "ext-9" }));
    expect(directory.resolve(scope, "ext-1")?.id).toBe("cus_2");
    expect(directory.resolve(scope, "ext-9")?.id).toBe("cus_1");
  });

  it("resolves only within the customer's tenant and mode", () => {
    const directory = new CustomerDirectory();
    directory.put(customer());
    expect(directory.resolve({ tenantId: "ten_b", mode: "test" }, "cus_1")).toBeUndefined();
    expect(directory.resolve({ tenantId: "ten_a", mode: "live" }, "ext-1")).toBeUndefined();
    expect(directory.resolve(scope, "ext-1")?.id).toBe("cus_1");
  });
});
