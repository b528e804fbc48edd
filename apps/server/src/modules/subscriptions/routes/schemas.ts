import { type TSchema, Type } from "typebox";
import { Metadata, Timestamp } from "../../../http/schemas.ts";
import { type PinnedPlan, type Subscription, subscriptionStatuses } from "../domain/subscription.ts";
import type { StoredPhase } from "../store.ts";

const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);
const NullableTimestamp = Type.Union([Type.String({ format: "date-time" }), Type.Null()]);
export const StatusSchema = Type.Enum([...subscriptionStatuses], {
  description: "EXPIRED and CANCELLED are terminal",
});

const Ref = Type.String({ minLength: 1, maxLength: 100 });

export const CreateSubscriptionBody = Type.Object({
  customer_id: Type.String({
    minLength: 1,
    maxLength: 100,
    description: "the customer's id (cus_…) or external_id",
  }),
  offering_id: Ref,
  start_at: Type.Optional(
    Type.String({
      format: "date-time",
      description:
        "default now; in the future: CREATED until then; in the past: ACTIVE from then, without a trial",
    }),
  ),
  billing_anchor_day: Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: 31,
      description: "monthly and yearly plans: the day periods start on, clamped to short months",
    }),
  ),
  promotion_code: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
  price_overrides: Type.Optional(
    Type.Record(Type.String({ maxLength: 100 }), Type.Unknown(), { maxProperties: 100 }),
  ),
  metadata: Type.Optional(Metadata),
});

export const CancelBody = Type.Object({
  at_period_end: Type.Optional(
    Type.Boolean({
      default: false,
      description: "false: CANCELLED now; true: EXPIRING_SOON now and EXPIRED when the current period ends",
    }),
  ),
});

export const ChangePlanBody = Type.Object({ offering_id: Ref });

export const CreateKeyBody = Type.Object({ name: Type.Optional(Type.String({ maxLength: 200 })) });

/**
 * The api-keys module's key representation (its `toApi`): that module registers its schema inside
 * its own plugin, out of this one's reach, so the shape is restated here.
 */
export const ConsumerKeySchema = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal("api_key"),
    kind: Type.Enum(["secret", "consumer"]),
    mode: Type.Enum(["live", "test"]),
    name: Nullable(Type.String()),
    scopes: Type.Array(Type.String()),
    redacted_key: Type.String({ description: "prefix and last four characters" }),
    status: Type.Enum(["active", "expiring", "expired", "revoked", "suspended"]),
    subscription_id: Nullable(Type.String()),
    created_at: Type.String(),
    expires_at: Nullable(Type.String()),
    revoked_at: Nullable(Type.String()),
    suspended_at: Nullable(Type.String()),
    rotated_to: Nullable(Type.String()),
  },
  { $id: "ConsumerKey" },
);

const PinnedPlanSchema = Type.Object({ rate_plan_id: Type.String(), version: Type.Integer() });

export const SubscriptionSchema = Type.Object(
  {
    id: Type.String({ description: "sub_…" }),
    object: Type.Literal("subscription"),
    customer_id: Type.String(),
    offering_id: Type.String(),
    status: StatusSchema,
    items: Type.Array(PinnedPlanSchema, {
      description: "the rate plan versions the subscription is pinned to",
    }),
    billing_period: Type.Object({
      interval: Type.Enum(["day", "week", "month", "year"]),
      count: Type.Integer(),
    }),
    currency: Type.String(),
    start_at: Timestamp,
    trial_end_at: NullableTimestamp,
    current_period_start: Timestamp,
    current_period_end: Timestamp,
    billing_anchor_day: Nullable(Type.Integer()),
    timezone: Type.String({
      description:
        "IANA zone whose midnights start the periods (the default billing entity's when the subscription was created; UTC without one)",
    }),
    cancel_at_period_end: Type.Boolean(),
    cancel_at: Type.Union([Type.String({ format: "date-time" }), Type.Null()], {
      description: "EXPIRING_SOON: when it becomes EXPIRED",
    }),
    canceled_at: NullableTimestamp,
    paused_at: NullableTimestamp,
    ended_at: NullableTimestamp,
    promotion_code: Nullable(Type.String()),
    price_overrides: Nullable(Type.Record(Type.String(), Type.Unknown())),
    metadata: Type.Record(Type.String(), Type.String()),
    created_at: Timestamp,
    updated_at: Timestamp,
  },
  { $id: "Subscription" },
);

export const PhaseSchema = Type.Object(
  {
    object: Type.Literal("subscription_phase"),
    subscription_id: Type.String(),
    status: StatusSchema,
    offering_id: Type.String(),
    items: Type.Array(PinnedPlanSchema),
    reason: Type.String({
      description:
        "subscribed, started, trial_ended, paused, resumed, cancelled, cancellation_scheduled, cancellation_withdrawn, expired, plan_changed, or a billing reason",
    }),
    started_at: Timestamp,
    ended_at: NullableTimestamp,
    previous_offering_id: Nullable(Type.String()),
    previous_items: Nullable(Type.Array(PinnedPlanSchema)),
    period_start: NullableTimestamp,
    period_end: NullableTimestamp,
    fraction_remaining: Type.Union([Type.String(), Type.Null()], {
      description: "plan changes: (period_end − started_at) / (period_end − period_start), a decimal string",
    }),
  },
  { $id: "SubscriptionPhase" },
);

function toApiItems(items: PinnedPlan[]) {
  return items.map((item) => ({ rate_plan_id: item.ratePlanId, version: item.version }));
}

const iso = (date: Date | null | undefined) => date?.toISOString() ?? null;

export function toApi(subscription: Subscription) {
  return {
    id: subscription.id,
    object: "subscription" as const,
    customer_id: subscription.customerId,
    offering_id: subscription.offeringId,
    status: subscription.status,
    items: toApiItems(subscription.items),
    billing_period: {
      interval: subscription.billingPeriod.interval,
      count: subscription.billingPeriod.count,
    },
    currency: subscription.currency,
    start_at: subscription.startAt.toISOString(),
    trial_end_at: iso(subscription.trialEndAt),
    current_period_start: subscription.currentPeriodStart.toISOString(),
    current_period_end: subscription.currentPeriodEnd.toISOString(),
    billing_anchor_day: subscription.billingAnchorDay,
    timezone: subscription.timezone ?? "UTC",
    cancel_at_period_end: subscription.cancelAtPeriodEnd,
    cancel_at: iso(subscription.cancelAt),
    canceled_at: iso(subscription.canceledAt),
    paused_at: iso(subscription.pausedAt),
    ended_at: iso(subscription.endedAt),
    promotion_code: subscription.promotionCode,
    price_overrides: subscription.priceOverrides,
    metadata: subscription.metadata,
    created_at: subscription.createdAt.toISOString(),
    updated_at: subscription.updatedAt.toISOString(),
  };
}

export function phaseToApi(phase: StoredPhase) {
  const change = phase.planChange;
  return {
    object: "subscription_phase" as const,
    subscription_id: phase.subscriptionId,
    status: phase.status,
    offering_id: phase.offeringId,
    items: toApiItems(phase.items),
    reason: phase.reason,
    started_at: phase.startedAt.toISOString(),
    ended_at: iso(phase.endedAt),
    previous_offering_id: change?.previousOfferingId ?? null,
    previous_items: change ? toApiItems(change.previousItems) : null,
    period_start: iso(change?.periodStart),
    period_end: iso(change?.periodEnd),
    fraction_remaining: change?.fractionRemaining ?? null,
  };
}
