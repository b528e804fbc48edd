import type { TestApp, TestTenant } from "./test-app.ts";

export interface Fixture {
  tenant: TestTenant;
  as: { key: string; tenant: string };
}

/** A tenant (sandbox mode) ready to create things with. */
export async function sandbox(t: TestApp): Promise<Fixture> {
  const tenant = await t.createTenant();
  return { tenant, as: { key: tenant.testKey, tenant: tenant.id } };
}

async function created(t: TestApp, fixture: Fixture, url: string, body: unknown) {
  const response = await t.request("POST", url, { ...fixture.as, body });
  if (response.statusCode !== 201)
    throw new Error(`POST ${url} answered ${response.statusCode}: ${response.body}`);
  return response.json();
}

export function createUnit(t: TestApp, fixture: Fixture, body: Record<string, unknown>) {
  return created(t, fixture, "/v1/billable_units", { name: body.key, unit_label: "units", ...body });
}

export function createCustomer(t: TestApp, fixture: Fixture, body: Record<string, unknown> = {}) {
  return created(t, fixture, "/v1/customers", {
    name: "Customer",
    email: "billing@example.com",
    currency: "USD",
    ...body,
  });
}

/** A PUBLISHED offering over one rate plan (api_calls at 0.01 each) granting these entitlements. */
export async function publishedOffering(
  t: TestApp,
  fixture: Fixture,
  name: string,
  entitlements: unknown[],
): Promise<{ offeringId: string; ratePlanId: string }> {
  const plan = await created(t, fixture, "/v1/rate_plans", {
    name,
    currency: "USD",
    billing_period: { interval: "month", count: 1 },
    items: [{ model: "PER_UNIT", billable_unit: "api_calls", unit_price: "0.01" }],
    entitlements,
  });
  const offer = await created(t, fixture, "/v1/offerings", {
    name,
    rate_plan_ids: [plan.id],
    billing_mode: "POSTPAID",
    trial_days: 0,
    status: "PUBLISHED",
  });
  return { offeringId: offer.id, ratePlanId: plan.id };
}
