import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance } from "fastify";
import { Type } from "typebox";
import type { AppContext } from "../../../context.ts";
import { tenantScope } from "../../../http/auth.ts";
import { IdParams, listOf, PaginationQuery, problemResponses } from "../../../http/schemas.ts";
import { toApi as invoiceToApi } from "../../billing/routes/schemas.ts";
import { MAX_DUNNING_ATTEMPTS, MAX_DUNNING_DAY } from "../domain.ts";
import {
  DunningCycleSchema,
  DunningStatusSchema,
  dunningCycleToApi,
  MethodProviderSchema,
  PaymentMethodSchema,
  PaymentSchema,
  PaymentSettingsSchema,
  PaymentStatusSchema,
  paymentMethodToApi,
  paymentToApi,
  settingsToApi,
} from "./schemas.ts";

const read = { scope: "billing:read" as const };
const write = { scope: "billing:write" as const };
const IdQuery = Type.String({ minLength: 1, maxLength: 100 });
const ProviderReference = Type.String({ minLength: 1, maxLength: 255, pattern: "^\\S+$" });

/** Payment settings, customers' payment methods, payments and dunning cycles. */
export async function paymentRoutes(app: FastifyInstance, { context }: { context: AppContext }) {
  const routes = app.withTypeProvider<TypeBoxTypeProvider>();
  for (const schema of [PaymentSchema, PaymentMethodSchema, DunningCycleSchema, PaymentSettingsSchema])
    app.addSchema(schema);
  const payments = context.payments;

  routes.get(
    "/v1/payment_settings",
    {
      config: read,
      schema: {
        tags: ["Payments"],
        summary: "The tenant's payment providers and dunning schedule (this mode)",
        response: { 200: Type.Ref("PaymentSettings"), ...problemResponses() },
      },
    },
    async (request) => settingsToApi(await payments.getSettings(tenantScope(request))),
  );

  routes.put(
    "/v1/payment_settings",
    {
      config: write,
      schema: {
        tags: ["Payments"],
        summary: "Configure payment providers and the dunning schedule",
        description:
          "Fields left out keep their value; `null` removes the Stripe key or restores the default schedule. `automatic_collection` (default true): finalised invoices of customers with a default payment method are charged at once and retried on the dunning schedule; false leaves them to `POST /v1/invoices/{id}/pay`. The Stripe secret key is stored encrypted (AES-256-GCM) and never returned; a sandbox takes `sk_test_…`/`rk_test_…` keys, live mode `…_live_…` ones (422 otherwise). `dunning.schedule_days`: the days after collection starts on which the customer's default payment method is charged (default [0, 3, 7]); after the last failed attempt the invoice is UNCOLLECTIBLE and the subscription SUSPENDED with its consumer keys.",
        body: Type.Object({
          stripe: Type.Optional(
            Type.Union([
              Type.Object({ secret_key: Type.String({ minLength: 1, maxLength: 255 }) }),
              Type.Null(),
            ]),
          ),
          automatic_collection: Type.Optional(Type.Boolean()),
          dunning: Type.Optional(
            Type.Union([
              Type.Object({
                schedule_days: Type.Array(Type.Integer({ minimum: 0, maximum: MAX_DUNNING_DAY }), {
                  minItems: 1,
                  maxItems: MAX_DUNNING_ATTEMPTS,
                }),
              }),
              Type.Null(),
            ]),
          ),
        }),
        response: { 200: Type.Ref("PaymentSettings"), ...problemResponses(422) },
      },
    },
    async (request) => {
      const body = request.body;
      const settings = await payments.updateSettings(tenantScope(request), {
        stripeSecretKey: body.stripe === undefined ? undefined : (body.stripe?.secret_key ?? null),
        automaticCollection: body.automatic_collection,
        dunningScheduleDays: body.dunning === undefined ? undefined : (body.dunning?.schedule_days ?? null),
      });
      return settingsToApi(settings);
    },
  );

  routes.post(
    "/v1/customers/:id/payment_methods",
    {
      config: write,
      schema: {
        tags: ["Payments"],
        summary: "Save a customer's payment method held at a provider",
        description:
          "The provider keeps the card; Aforo keeps its reference (a Stripe `pm_…`, with the Stripe customer `cus_…` it is attached to). The first method saved, or one saved with `default: true`, becomes the default: finalised invoices and wallet auto top-ups are charged to it.",
        params: IdParams,
        body: Type.Object({
          provider: MethodProviderSchema,
          provider_payment_method_id: ProviderReference,
          provider_customer_id: Type.Optional(ProviderReference),
          default: Type.Optional(Type.Boolean()),
        }),
        response: { 201: Type.Ref("PaymentMethod"), ...problemResponses(404, 409, 422) },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const method = await payments.addPaymentMethod(tenantScope(request), request.params.id, {
        provider: body.provider as "stripe",
        providerPaymentMethodId: body.provider_payment_method_id,
        providerCustomerId: body.provider_customer_id,
        makeDefault: body.default,
      });
      return reply.code(201).send(paymentMethodToApi(method));
    },
  );

  routes.get(
    "/v1/customers/:id/payment_methods",
    {
      config: read,
      schema: {
        tags: ["Payments"],
        summary: "A customer's saved payment methods, newest first",
        params: IdParams,
        response: { 200: listOf(Type.Ref("PaymentMethod")), ...problemResponses(404) },
      },
    },
    async (request) => {
      const methods = await payments.listPaymentMethods(tenantScope(request), request.params.id);
      return { data: methods.map(paymentMethodToApi), has_more: false };
    },
  );

  routes.delete(
    "/v1/customers/:id/payment_methods/:payment_method_id",
    {
      config: write,
      schema: {
        tags: ["Payments"],
        summary: "Remove a saved payment method",
        description: "Payments keep naming it. Removing the default leaves the customer without one.",
        params: Type.Object({ id: IdQuery, payment_method_id: IdQuery }),
        response: { 200: Type.Ref("PaymentMethod"), ...problemResponses(404) },
      },
    },
    async (request) =>
      paymentMethodToApi(
        await payments.removePaymentMethod(
          tenantScope(request),
          request.params.id,
          request.params.payment_method_id,
        ),
      ),
  );

  routes.get(
    "/v1/payments",
    {
      config: read,
      schema: {
        tags: ["Payments"],
        summary: "List payments (every charge attempt), newest first",
        querystring: Type.Object({
          ...PaginationQuery.properties,
          invoice_id: Type.Optional(IdQuery),
          customer_id: Type.Optional(IdQuery),
          top_up_request_id: Type.Optional(IdQuery),
          status: Type.Optional(PaymentStatusSchema),
        }),
        response: { 200: listOf(Type.Ref("Payment")), ...problemResponses() },
      },
    },
    async (request) => {
      const query = request.query;
      const page = await payments.list(
        tenantScope(request),
        {
          invoiceId: query.invoice_id,
          customerId: query.customer_id,
          topUpRequestId: query.top_up_request_id,
          status: query.status as "PENDING" | "SUCCEEDED" | "FAILED" | undefined,
        },
        { limit: query.limit, startingAfter: query.starting_after },
      );
      return { data: page.data.map(paymentToApi), has_more: page.has_more };
    },
  );

  routes.get(
    "/v1/payments/:id",
    {
      config: read,
      schema: {
        tags: ["Payments"],
        summary: "Get a payment",
        params: IdParams,
        response: { 200: Type.Ref("Payment"), ...problemResponses(404) },
      },
    },
    async (request) => paymentToApi(await payments.get(tenantScope(request), request.params.id)),
  );

  routes.get(
    "/v1/dunning_cycles",
    {
      config: read,
      schema: {
        tags: ["Payments"],
        summary: "Dunning: automatic collection of invoices and its retries, newest first",
        description:
          "One cycle per invoice collected from a saved payment method. ACTIVE while attempts remain, RECOVERED once paid, EXHAUSTED after the last failed attempt (invoice UNCOLLECTIBLE, subscription SUSPENDED), CLOSED when the invoice was voided.",
        querystring: Type.Object({
          ...PaginationQuery.properties,
          invoice_id: Type.Optional(IdQuery),
          subscription_id: Type.Optional(IdQuery),
          customer_id: Type.Optional(IdQuery),
          status: Type.Optional(DunningStatusSchema),
        }),
        response: { 200: listOf(Type.Ref("DunningCycle")), ...problemResponses() },
      },
    },
    async (request) => {
      const query = request.query;
      const page = await payments.listCycles(
        tenantScope(request),
        {
          invoiceId: query.invoice_id,
          subscriptionId: query.subscription_id,
          customerId: query.customer_id,
          status: query.status as "ACTIVE" | "RECOVERED" | "EXHAUSTED" | "CLOSED" | undefined,
        },
        { limit: query.limit, startingAfter: query.starting_after },
      );
      return { data: page.data.map(dunningCycleToApi), has_more: page.has_more };
    },
  );

  routes.get(
    "/v1/dunning_cycles/:id",
    {
      config: read,
      schema: {
        tags: ["Payments"],
        summary: "Get a dunning cycle",
        params: IdParams,
        response: { 200: Type.Ref("DunningCycle"), ...problemResponses(404) },
      },
    },
    async (request) => dunningCycleToApi(await payments.getCycle(tenantScope(request), request.params.id)),
  );
}

/**
 * POST /v1/invoices/{id}/pay, registered by the billing routes (it answers with their Invoice
 * schema) and served by payments.
 */
export function registerPayInvoiceRoute(app: FastifyInstance, context: AppContext): void {
  const routes = app.withTypeProvider<TypeBoxTypeProvider>();
  routes.post(
    "/v1/invoices/:id/pay",
    {
      config: write,
      schema: {
        tags: ["Invoices"],
        summary: "Pay an invoice: OPEN, OVERDUE or UNCOLLECTIBLE → PAID",
        description:
          "`method` `manual` (the default, and what a bare POST does) records an offline payment as given by the operator (`reference`: a transfer id, kept on the payment). `method` `provider` charges the customer's saved payment method now (`payment_method_id`, or the customer's default; a `payment_method_id` alone implies `provider`). `amount`, when given, must equal the amount due (422). A refused charge is recorded as a FAILED payment and answered 402 `payment-failed`; a charge already in flight answers 409 `payment-in-progress`; a provider that cannot be reached answers 502 and its payment stays PENDING. Paying ends the invoice's dunning and brings a PAST_DUE or SUSPENDED subscription (and its consumer keys) back to ACTIVE. Finalised invoices of customers with a default payment method are also collected automatically.",
        params: IdParams,
        body: Type.Object({
          amount: Type.Optional(
            Type.Integer({ minimum: 0, description: "minor units; must equal what is due" }),
          ),
          method: Type.Optional(Type.Union([Type.Literal("manual"), Type.Literal("provider")])),
          payment_method_id: Type.Optional(IdQuery),
          reference: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
        }),
        response: { 200: Type.Ref("Invoice"), ...problemResponses(402, 404, 409, 422, 502) },
      },
      // The body is optional: a bare POST pays what is due.
      preValidation: async (request: { body: unknown }) => {
        request.body ??= {};
      },
    },
    async (request) => {
      const body = request.body;
      const invoice = await context.payments.payInvoice(tenantScope(request), request.params.id, {
        amount: body.amount === undefined ? undefined : BigInt(body.amount),
        method: body.method,
        paymentMethodId: body.payment_method_id,
        reference: body.reference,
      });
      return invoiceToApi(invoice);
    },
  );
}
