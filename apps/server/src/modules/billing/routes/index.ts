import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance } from "fastify";
import { Type } from "typebox";
import type { AppContext } from "../../../context.ts";
import { tenantScope } from "../../../http/auth.ts";
import { IdParams, listOf, PaginationQuery, problemResponses } from "../../../http/schemas.ts";
import { registerPayInvoiceRoute } from "../../payments/routes/index.ts";
import type { Invoice } from "../domain/invoice.ts";
import { CreditNoteSchema, creditNoteToApi, InvoiceSchema, InvoiceStatusSchema, toApi } from "./schemas.ts";

const tags = ["Invoices"];
const read = { scope: "billing:read" as const };
const write = { scope: "billing:write" as const };
const invoiceRef = Type.Ref("Invoice");
const creditNoteRef = Type.Ref("CreditNote");
const IdQuery = Type.String({ minLength: 1, maxLength: 100 });

/** Invoices and credit notes: `billing:read` to read, `billing:write` to preview and act. */
export async function billingRoutes(app: FastifyInstance, { context }: { context: AppContext }) {
  const routes = app.withTypeProvider<TypeBoxTypeProvider>();
  const billing = context.billing;
  app.addSchema(InvoiceSchema);
  app.addSchema(CreditNoteSchema);

  routes.post(
    "/v1/invoices/preview",
    {
      config: write,
      schema: {
        tags,
        summary: "Preview the invoice the subscription's current period would produce now",
        description:
          "Runs the same ten-stage pipeline as the final run over the usage so far and stores nothing: `id` and `number` are null, the status DRAFT.",
        body: Type.Object({ subscription_id: IdQuery }),
        response: { 200: invoiceRef, ...problemResponses(404, 409) },
      },
    },
    async (request) =>
      toApi(await billing.preview(tenantScope(request), request.body.subscription_id), { preview: true }),
  );

  routes.get(
    "/v1/invoices",
    {
      config: read,
      schema: {
        tags,
        summary: "List invoices, newest first",
        querystring: Type.Object({
          ...PaginationQuery.properties,
          customer_id: Type.Optional(IdQuery),
          subscription_id: Type.Optional(IdQuery),
          status: Type.Optional(InvoiceStatusSchema),
        }),
        response: { 200: listOf(invoiceRef), ...problemResponses() },
      },
    },
    async (request) => {
      const query = request.query;
      const page = await billing.list(
        tenantScope(request),
        { customerId: query.customer_id, subscriptionId: query.subscription_id, status: query.status },
        { limit: query.limit, startingAfter: query.starting_after },
      );
      return { data: page.data.map((invoice) => toApi(invoice)), has_more: page.has_more };
    },
  );

  routes.get(
    "/v1/invoices/:id",
    {
      config: read,
      schema: {
        tags,
        summary: "Get an invoice with its lines and pipeline trace",
        params: IdParams,
        response: { 200: invoiceRef, ...problemResponses(404) },
      },
    },
    async (request) => toApi(await billing.get(tenantScope(request), request.params.id)),
  );

  routes.get(
    "/v1/invoices/:id/pdf",
    {
      config: read,
      schema: {
        tags,
        summary: "The invoice as a PDF (application/pdf)",
        params: IdParams,
        response: problemResponses(404),
      },
    },
    async (request, reply) => {
      const pdf = await billing.pdf(tenantScope(request), request.params.id);
      return reply
        .type("application/pdf")
        .header("Content-Disposition", `inline; filename="${request.params.id}.pdf"`)
        .send(pdf);
    },
  );

  const action = (
    path: string,
    summary: string,
    description: string,
    run: (scope: ReturnType<typeof tenantScope>, id: string) => Promise<Invoice>,
  ) =>
    routes.post(
      `/v1/invoices/:id/${path}`,
      {
        config: write,
        schema: {
          tags,
          summary,
          description,
          params: IdParams,
          response: { 200: invoiceRef, ...problemResponses(404, 409, 422) },
        },
      },
      async (request) => toApi(await run(tenantScope(request), request.params.id)),
    );

  action(
    "finalize",
    "Finalise a draft: DRAFT → OPEN with the billing entity's next number",
    "Numbers are sequential per billing entity without gaps. 409 unless DRAFT.",
    (scope, id) => billing.finalize(scope, id),
  );
  action(
    "void",
    "Void an invoice: DRAFT, OPEN or OVERDUE → VOID",
    "A PAID invoice cannot be voided (409): issue a credit note instead.",
    (scope, id) => billing.void(scope, id),
  );
  // Served by payments (manual, or a charge to the customer's saved method), with this Invoice schema.
  registerPayInvoiceRoute(app, context);
  action(
    "mark_uncollectible",
    "Write an invoice off: OPEN or OVERDUE → UNCOLLECTIBLE",
    "A late payment still moves it to PAID.",
    (scope, id) => billing.markUncollectible(scope, id),
  );

  routes.post(
    "/v1/credit_notes",
    {
      config: write,
      schema: {
        tags: ["Credit notes"],
        summary: "Credit part or all of an OPEN, OVERDUE or PAID invoice",
        description:
          "`amount` in minor units may not exceed the invoice total less earlier credit notes (422). It lowers the amount due of an unpaid invoice; one left with nothing due is PAID.",
        body: Type.Object({
          invoice_id: IdQuery,
          amount: Type.Integer({ minimum: 1, description: "minor units of the invoice currency" }),
          reason: Type.String({ minLength: 1, maxLength: 200 }),
          description: Type.Optional(Type.String({ maxLength: 2000 })),
        }),
        response: { 201: creditNoteRef, ...problemResponses(422) },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const note = await billing.createCreditNote(tenantScope(request), {
        invoiceId: body.invoice_id,
        amount: BigInt(body.amount),
        reason: body.reason,
        description: body.description,
      });
      return reply.code(201).send(creditNoteToApi(note));
    },
  );

  routes.get(
    "/v1/credit_notes",
    {
      config: read,
      schema: {
        tags: ["Credit notes"],
        summary: "List credit notes, newest first",
        querystring: Type.Object({ ...PaginationQuery.properties, invoice_id: Type.Optional(IdQuery) }),
        response: { 200: listOf(creditNoteRef), ...problemResponses() },
      },
    },
    async (request) => {
      const page = await billing.listCreditNotes(
        tenantScope(request),
        { invoiceId: request.query.invoice_id },
        { limit: request.query.limit, startingAfter: request.query.starting_after },
      );
      return { data: page.data.map(creditNoteToApi), has_more: page.has_more };
    },
  );

  routes.get(
    "/v1/credit_notes/:id",
    {
      config: read,
      schema: {
        tags: ["Credit notes"],
        summary: "Get a credit note",
        params: IdParams,
        response: { 200: creditNoteRef, ...problemResponses(404) },
      },
    },
    async (request) => creditNoteToApi(await billing.getCreditNote(tenantScope(request), request.params.id)),
  );
}
