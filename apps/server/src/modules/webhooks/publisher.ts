import type { Kysely } from "kysely";
import type { Database } from "../../db/schema.ts";
import type { TenantScope } from "../../http/route-config.ts";

/** The events a tenant's webhook endpoints can subscribe to. */
export const WEBHOOK_EVENT_TYPES = [
  "invoice.created",
  "invoice.finalized",
  "invoice.paid",
  "invoice.voided",
  "invoice.marked_uncollectible",
  "payment.succeeded",
  "payment.failed",
  "subscription.created",
  "subscription.updated",
  "subscription.cancelled",
  "wallet.low_balance",
  "usage.threshold_reached",
  "api_key.created",
  "api_key.revoked",
] as const;

export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/**
 * Announces a change to the tenant's webhook endpoints. `publish` writes the event to the outbox
 * with the caller's transaction (`trx`), so the event exists exactly when the change committed;
 * the job queue delivers it afterwards.
 */
export interface WebhookPublisher {
  publish(
    trx: Kysely<Database>,
    scope: TenantScope,
    type: WebhookEventType,
    data: Record<string, unknown>,
  ): Promise<void>;
  /**
   * Optional: many events of one type at once, as `publish` for each in order (a bill run
   * finalises a chunk of invoices in one transaction). Callers fall back to `publish` without it.
   */
  publishMany?(
    trx: Kysely<Database>,
    scope: TenantScope,
    type: WebhookEventType,
    data: readonly Record<string, unknown>[],
  ): Promise<void>;
}

/** `publisher.publishMany` for several events when it has one, else `publish` for each in order. */
export async function publishEach(
  publisher: WebhookPublisher,
  trx: Kysely<Database>,
  scope: TenantScope,
  type: WebhookEventType,
  data: readonly Record<string, unknown>[],
): Promise<void> {
  if (data.length > 1 && publisher.publishMany) return publisher.publishMany(trx, scope, type, data);
  for (const item of data) await publisher.publish(trx, scope, type, item);
}

/** For services built without webhooks (unit tests, CLI one-shots): announces nothing. */
export const noWebhooks: WebhookPublisher = {
  publish: async () => {},
};
