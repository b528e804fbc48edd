import type { Clock } from "./clock.ts";
import type { Config } from "./config.ts";
import type { DatabaseHandle } from "./db/database.ts";
import { createMetrics, type Metrics } from "./http/observability.ts";
import { RateLimiter } from "./http/rate-limit/limiter.ts";
import { ApiKeyService } from "./modules/api-keys/service.ts";
import { CatalogService } from "./modules/catalog/service.ts";
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
  const stopKeys = await keys.start();
  await tenants.start();
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
    stop: async () => {
      await stopKeys();
    },
  };
}
