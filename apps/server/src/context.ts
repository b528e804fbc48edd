import type { Clock } from "./clock.ts";
import type { Config } from "./config.ts";
import type { DatabaseHandle } from "./db/database.ts";
import { createMetrics, type Metrics } from "./http/observability.ts";
import { RateLimiter } from "./http/rate-limit/limiter.ts";
import { ApiKeyService } from "./modules/api-keys/service.ts";
import { CatalogService } from "./modules/catalog/service.ts";
import { CustomerService } from "./modules/customers/service.ts";
import { EntitlementService } from "./modules/entitlements/service.ts";
import { ImportService } from "./modules/metering/imports/service.ts";
import { MeteringReadService } from "./modules/metering/read-service.ts";
import { MeteringService } from "./modules/metering/service.ts";
import { SubscriptionEnrichment } from "./modules/metering/subscription-enrichment.ts";
import { PricingService } from "./modules/pricing/service.ts";
import { SubscriptionService } from "./modules/subscriptions/service.ts";
import { TenantService } from "./modules/tenants/service.ts";

/** Every service, built once per process (or per test) around one database and one clock. */
export interface AppContext {
  config: Config;
  database: DatabaseHandle;
  clock: Clock;
  metrics: Metrics;
  rateLimiter: RateLimiter;
  keys: ApiKeyService;
  tenants: TenantService;
  catalog: CatalogService;
  pricing: PricingService;
  customers: CustomerService;
  metering: MeteringService;
  subscriptions: SubscriptionService;
  imports: ImportService;
  entitlements: EntitlementService;
  meteringReads: MeteringReadService;
  /** Stops background work the services started (listeners, timers). */
  stop(): Promise<void>;
}

export async function createContext(
  config: Config,
  database: DatabaseHandle,
  clock: Clock,
): Promise<AppContext> {
  const keys = new ApiKeyService(database, clock, config.operatorKey);
  const tenants = new TenantService(database, keys, clock);
  const catalog = new CatalogService(database, clock);
  const pricing = new PricingService(database, clock, catalog);
  const customers = new CustomerService(database, clock);
  const stopKeys = await keys.start();
  await tenants.start();
  const stopCustomers = await customers.start();
  const stopCatalog = await catalog.start();
  const stopPricing = await pricing.start();
  const subscriptions = new SubscriptionService(database, clock, { pricing, customers, keys });
  const stopSubscriptions = await subscriptions.start();
  const metering = new MeteringService(database, clock, catalog, customers, keys);
  const imports = new ImportService(database, clock, metering);
  const entitlements = new EntitlementService(database, clock, {
    keys,
    customers,
    catalog,
    pricing,
    subscriptions,
    metering,
  });
  // Counters are rebuilt before anything is ingested, so no event is counted twice.
  const stopEntitlements = await entitlements.start();
  metering.enrichment = new SubscriptionEnrichment(subscriptions, pricing.versions, entitlements.counters);
  imports.start();
  return {
    config,
    database,
    clock,
    metrics: createMetrics(),
    rateLimiter: new RateLimiter(),
    keys,
    tenants,
    catalog,
    pricing,
    customers,
    metering,
    subscriptions,
    imports,
    entitlements,
    meteringReads: new MeteringReadService(database, clock, catalog),
    stop: async () => {
      await imports.stop();
      await metering.drain();
      await stopEntitlements();
      await stopSubscriptions();
      await stopCatalog();
      await stopPricing();
      await stopKeys();
      await stopCustomers();
    },
  };
}
