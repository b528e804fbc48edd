import type { Clock } from "./clock.ts";
import type { Config } from "./config.ts";
import type { DatabaseHandle } from "./db/database.ts";
import { createMetrics, type Metrics } from "./http/observability.ts";
import { RateLimiter } from "./http/rate-limit/limiter.ts";
import { ApiKeyService } from "./modules/api-keys/service.ts";
import { CatalogService } from "./modules/catalog/service.ts";
import { CustomerService } from "./modules/customers/service.ts";
import { MeteringService } from "./modules/metering/service.ts";
import { PricingService } from "./modules/pricing/service.ts";
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
  const metering = new MeteringService(database, clock, catalog, customers, keys);
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
    stop: async () => {
      await metering.drain();
      await stopCatalog();
      await stopKeys();
      await stopCustomers();
    },
  };
}
