import { describe, expect, it } from "vitest";
import { estimateMarginalRevenue } from "./revenue-estimator.ts";

const graduated = {
  model: "GRADUATED" as const,
  billable_unit: "api_calls",
  tiers: [
    { up_to: "1000", unit_price: "0.010" },
    { up_to: "10000", unit_price: "0.008" },
    { up_to: null, unit_price: "0.005" },
  ],
};

describe("revenue estimator", () => {
  it("prices an event at the tier the running total is in", () => {
    expect(estimateMarginalRevenue(graduated, "0", "1", "USD")).toBe("0.01");
    expect(estimateMarginalRevenue(graduated, "5000", "1", "USD")).toBe("0.008");
    expect(estimateMarginalRevenue(graduated, "20000", "1", "USD")).toBe("0.005");
  });

  it("splits an event that crosses a tier edge", () => {
    expect(estimateMarginalRevenue(graduated, "999", "2", "USD")).toBe("0.018");
  });

  it("earns nothing inside an included allowance", () => {
    const quota = {
      model: "INCLUDED_QUOTA" as const,
      billable_unit: "api_calls",
      included: "100",
      overage_price: "0.5",
    };
    expect(estimateMarginalRevenue(quota, "10", "5", "USD")).toBe("0");
    expect(estimateMarginalRevenue(quota, "98", "5", "USD")).toBe("1.5");
  });

  it("sums to the period's charge whatever the order of events", () => {
    const quantities = ["300", "1200", "7", "9000", "493"];
    let running = 0n;
    let total = 0;
    for (const quantity of quantities) {
      total += Number(estimateMarginalRevenue(graduated, String(running), quantity, "USD")) * 1000;
      running += BigInt(quantity);
    }
    // 11,000 units: 10.00 + 72.00 + 5.00 = 87.00
    expect(Math.round(total)).toBe(87_000);
  });
});
