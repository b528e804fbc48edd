import { Type } from "typebox";
import { Timestamp } from "../../../http/schemas.ts";
import { minorUnitsToJson } from "../../pricing/domain/preview.ts";
import {
  type DunningCycle,
  dunningStatuses,
  methodProviders,
  type Payment,
  type PaymentMethod,
  type PaymentSettings,
  paymentStatuses,
  paymentTriggers,
  providerNames,
} from "../domain.ts";

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) =>
  Type.Union([schema, Type.Null()]);
const literals = (values: readonly string[]) => Type.Union(values.map((value) => Type.Literal(value)));

export const PaymentStatusSchema = literals(paymentStatuses);
export const DunningStatusSchema = literals(dunningStatuses);
export const MethodProviderSchema = literals(methodProviders);

export const PaymentSchema = Type.Object(
  {
    id: Type.String({ description: "pay_…" }),
    object: Type.Literal("payment"),
    invoice_id: Nullable(Type.String()),
    top_up_request_id: Nullable(Type.String({ description: "set for a wallet auto top-up's charge" })),
    customer_id: Type.String(),
    payment_method_id: Nullable(Type.String()),
    dunning_cycle_id: Nullable(Type.String()),
    amount: Type.Integer({ description: "minor units" }),
    currency: Type.String(),
    status: PaymentStatusSchema,
    provider: literals(providerNames),
    provider_payment_id: Nullable(
      Type.String({
        description: "the provider's id (a Stripe PaymentIntent), or a manual payment's reference",
      }),
    ),
    failure_code: Nullable(
      Type.String({ description: "the provider's code (card_declined, insufficient_funds, …)" }),
    ),
    failure_message: Nullable(Type.String()),
    attempt: Type.Integer({
      description: "1 for the invoice's (or top-up's) first payment, 2 for the next, …",
    }),
    trigger: literals(paymentTriggers),
    created_at: Timestamp,
    updated_at: Timestamp,
  },
  { $id: "Payment" },
);

export const PaymentMethodSchema = Type.Object(
  {
    id: Type.String({ description: "pm_…" }),
    object: Type.Literal("payment_method"),
    customer_id: Type.String(),
    provider: MethodProviderSchema,
    provider_payment_method_id: Type.String(),
    provider_customer_id: Nullable(Type.String()),
    default: Type.Boolean(),
    created_at: Timestamp,
  },
  { $id: "PaymentMethod" },
);

export const DunningCycleSchema = Type.Object(
  {
    id: Type.String({ description: "dun_…" }),
    object: Type.Literal("dunning_cycle"),
    invoice_id: Type.String(),
    subscription_id: Type.String(),
    customer_id: Type.String(),
    status: DunningStatusSchema,
    schedule_days: Type.Array(Type.Integer(), { description: "attempts at started_at + these days" }),
    attempts: Type.Integer({ description: "attempts made and failed" }),
    next_attempt_at: Nullable(Timestamp),
    last_failure_code: Nullable(Type.String()),
    last_failure_message: Nullable(Type.String()),
    started_at: Timestamp,
    ended_at: Nullable(Timestamp),
  },
  { $id: "DunningCycle" },
);

export const PaymentSettingsSchema = Type.Object(
  {
    object: Type.Literal("payment_settings"),
    providers: Type.Object({
      manual: Type.Object({ configured: Type.Literal(true) }),
      stripe: Type.Object({
        configured: Type.Boolean(),
        secret_key_hint: Nullable(Type.String({ description: "prefix and last four characters" })),
        updated_at: Nullable(Timestamp),
      }),
    }),
    automatic_collection: Type.Boolean({
      description: "finalised invoices are charged to the customer's default payment method, with dunning",
    }),
    dunning: Type.Object({
      schedule_days: Type.Array(Type.Integer()),
      default: Type.Boolean({ description: "true while the tenant has not set its own schedule" }),
    }),
    updated_at: Nullable(Timestamp),
  },
  { $id: "PaymentSettings" },
);

const iso = (at: Date | null) => (at === null ? null : at.toISOString());

export function paymentToApi(payment: Payment) {
  return {
    id: payment.id,
    object: "payment" as const,
    invoice_id: payment.invoiceId,
    top_up_request_id: payment.topUpRequestId,
    customer_id: payment.customerId,
    payment_method_id: payment.paymentMethodId,
    dunning_cycle_id: payment.dunningCycleId,
    amount: minorUnitsToJson(payment.amount),
    currency: payment.currency,
    status: payment.status,
    provider: payment.provider,
    provider_payment_id: payment.providerPaymentId,
    failure_code: payment.failureCode,
    failure_message: payment.failureMessage,
    attempt: payment.attempt,
    trigger: payment.trigger,
    created_at: payment.createdAt.toISOString(),
    updated_at: payment.updatedAt.toISOString(),
  };
}

export function paymentMethodToApi(method: PaymentMethod) {
  return {
    id: method.id,
    object: "payment_method" as const,
    customer_id: method.customerId,
    provider: method.provider,
    provider_payment_method_id: method.providerPaymentMethodId,
    provider_customer_id: method.providerCustomerId,
    default: method.isDefault,
    created_at: method.createdAt.toISOString(),
  };
}

export function dunningCycleToApi(cycle: DunningCycle) {
  return {
    id: cycle.id,
    object: "dunning_cycle" as const,
    invoice_id: cycle.invoiceId,
    subscription_id: cycle.subscriptionId,
    customer_id: cycle.customerId,
    status: cycle.status,
    schedule_days: cycle.scheduleDays,
    attempts: cycle.attempts,
    next_attempt_at: iso(cycle.nextAttemptAt),
    last_failure_code: cycle.lastFailureCode,
    last_failure_message: cycle.lastFailureMessage,
    started_at: cycle.startedAt.toISOString(),
    ended_at: iso(cycle.endedAt),
  };
}

export function settingsToApi(settings: PaymentSettings) {
  return {
    object: "payment_settings" as const,
    providers: {
      manual: { configured: true as const },
      stripe: {
        configured: settings.stripe !== null,
        secret_key_hint: settings.stripe?.secretHint ?? null,
        updated_at: iso(settings.stripe?.updatedAt ?? null),
      },
    },
    automatic_collection: settings.automaticCollection,
    dunning: { schedule_days: settings.dunningScheduleDays, default: settings.dunningScheduleIsDefault },
    updated_at: iso(settings.updatedAt),
  };
}
