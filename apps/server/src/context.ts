import type { Clock } from "./clock.ts";
import type { Config } from "./config.ts";
import type { DatabaseHandle } from "./db/database.ts";
import { scheduleIdempotencySweep } from "./http/idempotency.ts";
import { createMetrics, type Metrics } from "./http/observability.ts";
import { RateLimiter } from "./http/rate-limit/limiter.ts";
import { PgBossQueue } from "./jobs/pg-boss-queue.ts";
import type { JobQueue } from "./jobs/queue.ts";
import { ApiKeyService } from "./modules/api-keys/service.ts";
import { announceClosedPeriods, followClosedPeriods } from "./modules/bill-runs/closed-period-feed.ts";
import { ClosedPeriods } from "./modules/bill-runs/closed-periods.ts";
import { BillRunService } from "./modules/bill-runs/service.ts";
import { BillingService } from "./modules/billing/service.ts";
import { BillingEntityService } from "./modules/billing-entities/service.ts";
import { CatalogService } from "./modules/catalog/service.ts";
import { CustomerService } from "./modules/customers/service.ts";
import { EntitlementService } from "./modules/entitlements/service.ts";
import { DEFAULT_BACKDATING_LIMIT_DAYS } from "./modules/metering/domain/timing.ts";
import { ImportService } from "./modules/metering/imports/service.ts";
import { MeteringReadService } from "./modules/metering/read-service.ts";
import { MeteringService } from "./modules/metering/service.ts";
import { SubscriptionEnrichment } from "./modules/metering/subscription-enrichment.ts";
import { stripeEndpointOf } from "./modules/payments/providers/stripe.ts";
import { PaymentService } from "./modules/payments/service.ts";
import { PricingService } from "./modules/pricing/service.ts";
import { SubscriptionService } from "./modules/subscriptions/service.ts";
import { TaxService } from "./modules/taxes/service.ts";
import { TenantService } from "./modules/tenants/service.ts";
import { PrepaidUsage } from "./modules/wallets/prepaid-usage.ts";
import { WalletService } from "./modules/wallets/service.ts";
import { SecretBox } from "./modules/webhooks/secrets.ts";
import { WebhookService } from "./modules/webhooks/service.ts";

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
  billingEntities: BillingEntityService;
  taxes: TaxService;
  imports: ImportService;
  entitlements: EntitlementService;
  meteringReads: MeteringReadService;
  billRuns: BillRunService;
  billing: BillingService;
  wallets: WalletService;
  /** Debits PREPAID and HYBRID usage from wallets as it is metered (ADR 0015). */
  prepaidUsage: PrepaidUsage;
  webhooks: WebhookService;
  /** Payment providers, saved payment methods, payments, dunning and top-up charges (ADR 0014). */
  payments: PaymentService;
  jobs: JobQueue;
  /** Stops background work the services started (listeners, timers). */
  stop(): Promise<void>;
}

export interface ContextOptions {
  /**
   * Start background work: the job queue with its workers and schedules, and the import runner.
   * Default true; a CLI command (one action, then exit) passes false.
   */
  background?: boolean;
}

export async function createContext(
  config: Config,
  database: DatabaseHandle,
  clock: Clock,
  options: ContextOptions = {},
): Promise<AppContext> {
  const background = options.background ?? true;
  const keys = new ApiKeyService(database, clock, config.operatorKey);
  const tenants = new TenantService(database, keys, clock);
  const catalog = new CatalogService(database, clock);
  const pricing = new PricingService(database, clock, catalog);
  const customers = new CustomerService(database, clock);
  const stopKeys = await keys.start();
  await tenants.start();
  const stopCustomers = await customers.start();
  const billingEntities = new BillingEntityService(database, clock);
  const taxes = new TaxService(database, clock);
  const stopTaxes = await taxes.start();
  const stopCatalog = await catalog.start();
  const stopPricing = await pricing.start();
  const subscriptions = new SubscriptionService(database, clock, {
    pricing,
    customers,
    keys,
    billingEntities,
  });
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
  // Bill runs: periods already invoiced are closed to usage before anything is ingested, and the
  // ones other processes invoice from now on are heard of.
  const closedPeriods = new ClosedPeriods({
    settle: () => metering.settled(),
    announce: (scope, closes) => announceClosedPeriods(database, scope, closes),
  });
  const stopClosedPeriods = await followClosedPeriods(
    database,
    closedPeriods,
    () => new Date(clock.now().getTime() - (DEFAULT_BACKDATING_LIMIT_DAYS + 1) * 86_400_000),
  );
  metering.closedPeriods = closedPeriods;
  // Resumed imports ingest: only once invoiced periods are closed to usage (they are kept then).
  if (background) imports.start();
  const jobs = new PgBossQueue(database);
  if (background) await jobs.start();
  // Idempotency keys are remembered 24 hours; an hourly job forgets older ones.
  if (background) await scheduleIdempotencySweep(jobs, database.db, clock);
  // Outbound webhooks: services publish into the outbox inside their own transactions.
  const webhooks = new WebhookService(database, clock, jobs, {
    retryScheduleMs: config.webhookRetryScheduleMs,
    timeoutMs: config.webhookTimeoutMs,
    secretsKey: config.secretsKey,
  });
  if (background) await webhooks.start();
  keys.webhooks = webhooks;
  subscriptions.webhooks = webhooks;
  webhooks.watchUsage(metering, entitlements);
  const billRuns = new BillRunService(database, clock, {
    subscriptions,
    versions: pricing.versions,
    closedPeriods,
    jobs,
  });
  if (background) await billRuns.start();
  const meteringReads = new MeteringReadService(database, clock, catalog);
  const billing = new BillingService(database, clock, {
    subscriptions,
    pricing,
    customers,
    meteringReads,
    billingEntities,
    taxes,
    // Late events become adjustments on the next invoice; every final invoice closes its period.
    lateUsage: billRuns,
    closedPeriods,
  });
  // Wallets tell the edge when a prepaid customer runs dry, so they start after entitlements.
  const wallets = new WalletService(database, clock, { customers, pricing, subscriptions, entitlements });
  subscriptions.wallets = wallets;
  wallets.webhooks = webhooks;
  const stopWallets = await wallets.start();
  // Prepaid and hybrid invoices are paid from the wallet first; their usage debits it as metered,
  // after the group commit (the listener only notes the period; the debit runs a moment later).
  billing.wallets = wallets;
  const prepaidUsage = new PrepaidUsage(database, clock, { wallets, subscriptions, charges: billing });
  metering.onAccepted((rows) => prepaidUsage.accepted(rows));
  if (background) await prepaidUsage.start();
  // Payments collect finalised invoices and auto top-ups from saved methods, and run dunning.
  const payments = new PaymentService(database, clock, {
    customers,
    subscriptions,
    keys,
    wallets,
    jobs,
    secrets: new SecretBox(database.db, config.secretsKey),
    stripe: stripeEndpointOf(config.stripeApiUrl),
  });
  payments.webhooks = webhooks;
  if (background) await payments.start();
  // A finalised invoice with something due queues its collection in the finalising transaction.
  billing.webhooks = payments.collectOnFinalize(webhooks);
  // Bill runs invoice through billing's pipeline, and the daily job also marks overdue invoices.
  billRuns.invoicing = billing;
  billRuns.overdue = billing;
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
    billingEntities,
    taxes,
    imports,
    entitlements,
    meteringReads,
    billRuns,
    billing,
    wallets,
    prepaidUsage,
    webhooks,
    payments,
    jobs,
    stop: async () => {
      await prepaidUsage.stop();
      await payments.stop();
      await stopWallets();
      await webhooks.stop();
      await jobs.stop();
      await imports.stop();
      await entitlements.settle();
      await metering.drain();
      // Thresholds crossed by the last events are still written to the outbox.
      await webhooks.settle();
      await stopEntitlements();
      await stopSubscriptions();
      await stopCatalog();
      await stopPricing();
      await stopKeys();
      await stopCustomers();
      await stopTaxes();
      await stopClosedPeriods();
    },
  };
}
