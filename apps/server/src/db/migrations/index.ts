import type { Migration } from "kysely";
import * as foundation from "./0001_foundation.ts";
import * as pricing from "./0003_pricing.ts";
import * as metering from "./0004_metering.ts";
import * as customers from "./0005_customers.ts";
import * as consumerKeys from "./0006_consumer_keys.ts";
import * as usageReads from "./0007_usage_reads.ts";
import * as subscriptions from "./0008_subscriptions.ts";
import * as entitlements from "./0009_entitlements.ts";
import * as billingEntitiesTaxes from "./0010_billing_entities_taxes.ts";
import * as invoices from "./0011_invoices.ts";
import * as billRuns from "./0012_bill_runs.ts";
import * as wallets from "./0014_wallets.ts";
import * as webhooks from "./0015_webhooks.ts";
import * as payments from "./0016_payments.ts";
import * as prepaid from "./0017_prepaid.ts";
import * as billingTimeZones from "./0018_billing_time_zones.ts";
import * as rollupShards from "./0020_rollup_shards.ts";
import * as usageEventsTenantKey from "./0021_usage_events_tenant_key.ts";
import * as eventEnrichments from "./0022_event_enrichments.ts";
import * as idempotencyRetention from "./0023_idempotency_retention.ts";
import * as usageEventsOneTimeIndex from "./0024_usage_events_one_time_index.ts";

/** Every migration, in order. Forward-only: append, never edit or reorder. */
export const migrations: Record<string, Migration> = {
  "0001_foundation": foundation,
  "0003_pricing": pricing,
  "0004_metering": metering,
  "0005_customers": customers,
  "0006_consumer_keys": consumerKeys,
  "0007_usage_reads": usageReads,
  "0008_subscriptions": subscriptions,
  "0009_entitlements": entitlements,
  "0010_billing_entities_taxes": billingEntitiesTaxes,
  "0011_invoices": invoices,
  "0012_bill_runs": billRuns,
  "0014_wallets": wallets,
  "0020_rollup_shards": rollupShards,
  "0015_webhooks": webhooks,
  "0016_payments": payments,
  "0017_prepaid": prepaid,
  "0018_billing_time_zones": billingTimeZones,
  "0021_usage_events_tenant_key": usageEventsTenantKey,
  "0022_event_enrichments": eventEnrichments,
  "0023_idempotency_retention": idempotencyRetention,
  "0024_usage_events_one_time_index": usageEventsOneTimeIndex,
};
