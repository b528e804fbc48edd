import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance } from "fastify";
import { Type } from "typebox";
import type { AppContext } from "../../../context.ts";
import { tenantScope } from "../../../http/auth.ts";
import { IdParams, listOf, PaginationQuery, problemResponses, Timestamp } from "../../../http/schemas.ts";
import type { BillRun } from "../domain.ts";

const tags = ["Bill runs"];
const read = { scope: "billing:read" as const };
const write = { scope: "billing:write" as const };

export const BillRunSchema = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal("bill_run"),
    status: Type.Union([Type.Literal("RUNNING"), Type.Literal("COMPLETED"), Type.Literal("FAILED")]),
    as_of: Timestamp,
    subscriptions_total: Type.Union([Type.Integer(), Type.Null()]),
    subscriptions_processed: Type.Integer(),
    periods_invoiced: Type.Integer({ description: "periods invoiced by this run, new or found invoiced" }),
    invoices_created: Type.Integer(),
    invoice_ids: Type.Array(Type.String(), {
      description: "the invoices this run created (the first 1,000; `invoices_created` counts all)",
    }),
    error: Type.Union([Type.String(), Type.Null()]),
    created_at: Timestamp,
    completed_at: Type.Union([Timestamp, Type.Null()]),
  },
  { $id: "BillRun" },
);

export const StartBillRunBody = Type.Object({
  as_of: Type.Optional(
    Type.String({ format: "date-time", description: "invoice every period that ended by then; default now" }),
  ),
});

export function toApi(run: BillRun) {
  return {
    id: run.id,
    object: "bill_run" as const,
    status: run.status,
    as_of: run.asOf.toISOString(),
    subscriptions_total: run.subscriptionsTotal,
    subscriptions_processed: run.subscriptionsProcessed,
    periods_invoiced: run.periodsInvoiced,
    invoices_created: run.invoicesCreated,
    invoice_ids: run.invoiceIds,
    error: run.error,
    created_at: run.createdAt.toISOString(),
    completed_at: run.completedAt?.toISOString() ?? null,
  };
}

/** Bill runs: `billing:write` to start one, `billing:read` to follow it. */
export async function billRunRoutes(app: FastifyInstance, { context }: { context: AppContext }) {
  const routes = app.withTypeProvider<TypeBoxTypeProvider>();
  const billRuns = context.billRuns;
  app.addSchema(BillRunSchema);
  const billRunRef = Type.Ref("BillRun");

  routes.post(
    "/v1/bill_runs",
    {
      config: write,
      schema: {
        tags,
        summary: "Invoice every subscription period that ended by as_of",
        description:
          "Each period is invoiced once: a second run for the same periods creates nothing new. A tenant with at most 200 subscriptions is billed within the request (201 COMPLETED or FAILED); a larger one answers 201 RUNNING and the run goes on in the background (follow it with GET /v1/bill_runs/{id}). 409 `conflict` while another run of this tenant and mode is RUNNING; 422 for an as_of in the future.",
        body: StartBillRunBody,
        response: { 201: billRunRef, ...problemResponses(409, 422) },
      },
      // `{as_of?}`: a POST without a body is a run as of now.
      preValidation: async (request) => {
        if (request.body === undefined || request.body === null) request.body = {};
      },
    },
    async (request, reply) => {
      const asOf = request.body.as_of;
      const run = await billRuns.startRun(tenantScope(request), {
        asOf: asOf === undefined ? undefined : new Date(asOf),
      });
      return reply.code(201).send(toApi(run));
    },
  );

  routes.get(
    "/v1/bill_runs",
    {
      config: read,
      schema: {
        tags,
        summary: "List bill runs, newest first",
        querystring: PaginationQuery,
        response: { 200: listOf(billRunRef), ...problemResponses() },
      },
    },
    async (request) => {
      const page = await billRuns.list(tenantScope(request), {
        limit: request.query.limit,
        startingAfter: request.query.starting_after,
      });
      return { data: page.data.map(toApi), has_more: page.has_more };
    },
  );

  routes.get(
    "/v1/bill_runs/:id",
    {
      config: read,
      schema: {
        tags,
        summary: "Get a bill run (its progress while RUNNING)",
        params: IdParams,
        response: { 200: billRunRef, ...problemResponses(404) },
      },
    },
    async (request) => toApi(await billRuns.get(tenantScope(request), request.params.id)),
  );
}
