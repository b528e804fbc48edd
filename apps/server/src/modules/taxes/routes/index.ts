import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { type Static, type TSchema, Type } from "typebox";
import type { AppContext } from "../../../context.ts";
import { tenantScope } from "../../../http/auth.ts";
import {
  DecimalInput,
  DecimalOutput,
  IdParams,
  listOf,
  PaginationQuery,
  problemResponses,
} from "../../../http/schemas.ts";
import { jurisdictionOf, type TaxRate } from "../domain.ts";

const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

const Name = Type.String({ minLength: 1, maxLength: 200, description: "shown on invoice lines, e.g. 'VAT'" });
const Country = Type.String({ pattern: "^[A-Z]{2}$", description: "ISO 3166-1 alpha-2, upper case" });
const Region = Type.String({
  maxLength: 100,
  description:
    "state or province, e.g. NY or CA (compared ignoring case); omit for a country-wide rate. Where the buyer's region has rates, they replace the country-wide ones",
});
// 0 to 100 with up to 6 decimals ("19", "8.875"); outside that range answers 422.
const Percent = DecimalInput;
const Description = Type.String({ maxLength: 500 });

const CreateBody = Type.Object({
  name: Name,
  country: Country,
  region: Type.Optional(Nullable(Region)),
  percent: Percent,
  inclusive: Type.Optional(
    Type.Boolean({ default: false, description: "true: prices already contain this tax" }),
  ),
  active: Type.Optional(Type.Boolean({ default: true })),
  description: Type.Optional(Nullable(Description)),
});

const UpdateBody = Type.Object({
  name: Type.Optional(Name),
  country: Type.Optional(Country),
  region: Type.Optional(Nullable(Region)),
  percent: Type.Optional(Percent),
  inclusive: Type.Optional(Type.Boolean()),
  active: Type.Optional(Type.Boolean()),
  description: Type.Optional(Nullable(Description)),
});

export const TaxRateSchema = Type.Object(
  {
    id: Type.String({ description: "txr_…" }),
    object: Type.Literal("tax_rate"),
    name: Type.String(),
    country: Type.String(),
    region: Nullable(Type.String()),
    jurisdiction: Type.String({ description: "country, or country-region (US-NY)" }),
    percent: DecimalOutput,
    inclusive: Type.Boolean(),
    active: Type.Boolean(),
    description: Nullable(Type.String()),
    created_at: Type.String({ format: "date-time" }),
    updated_at: Type.String({ format: "date-time" }),
  },
  { $id: "TaxRate" },
);

export function toApi(rate: TaxRate) {
  return {
    id: rate.id,
    object: "tax_rate" as const,
    name: rate.name,
    country: rate.country,
    region: rate.region,
    jurisdiction: jurisdictionOf(rate),
    percent: rate.percent,
    inclusive: rate.inclusive,
    active: rate.active,
    description: rate.description,
    created_at: rate.createdAt.toISOString(),
    updated_at: rate.updatedAt.toISOString(),
  };
}

const tags = ["Tax rates"];
const read = { scope: "billing:read" as const };
const write = { scope: "billing:write" as const };
const rateRef = Type.Ref("TaxRate");

/** Tax rates: `billing:read` to read, `billing:write` to change. */
export async function taxRoutes(app: FastifyInstance, { context }: { context: AppContext }) {
  const routes = app.withTypeProvider<TypeBoxTypeProvider>();
  const taxes = context.taxes;
  app.addSchema(TaxRateSchema);

  routes.post(
    "/v1/tax_rates",
    {
      config: write,
      schema: {
        tags,
        summary: "Create a tax rate",
        description:
          "Invoices apply the active rates of the buyer's country: the rates of the buyer's region when there are any, else the country-wide ones; every rate of that level applies to the net amount (no compounding).",
        body: CreateBody,
        response: { 201: rateRef, ...problemResponses(422) },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const rate = await taxes.create(tenantScope(request), {
        name: body.name,
        country: body.country,
        region: body.region,
        percent: body.percent,
        inclusive: body.inclusive,
        active: body.active,
        description: body.description,
      });
      return reply.code(201).send(toApi(rate));
    },
  );

  routes.get(
    "/v1/tax_rates",
    {
      config: read,
      schema: {
        tags,
        summary: "List tax rates, newest first",
        querystring: Type.Object({
          ...PaginationQuery.properties,
          active: Type.Optional(Type.Boolean()),
          country: Type.Optional(Country),
        }),
        response: { 200: listOf(rateRef), ...problemResponses() },
      },
    },
    async (request) => {
      const query = request.query;
      const page = await taxes.list(
        tenantScope(request),
        { active: query.active, country: query.country },
        { limit: query.limit, startingAfter: query.starting_after },
      );
      return { data: page.data.map(toApi), has_more: page.has_more };
    },
  );

  routes.get(
    "/v1/tax_rates/:id",
    {
      config: read,
      schema: {
        tags,
        summary: "Get a tax rate",
        params: IdParams,
        response: { 200: rateRef, ...problemResponses(404) },
      },
    },
    async (request) => toApi(await taxes.get(tenantScope(request), request.params.id)),
  );

  const update = {
    config: write,
    schema: {
      tags,
      summary: "Update a tax rate (fields given only)",
      description:
        "Applies to invoices computed from now on; issued invoices keep the name and percent they were computed with.",
      params: IdParams,
      body: UpdateBody,
      response: { 200: rateRef, ...problemResponses(404, 422) },
    },
  };
  const updateHandler = async (
    request: FastifyRequest<{ Params: Static<typeof IdParams>; Body: Static<typeof UpdateBody> }>,
  ) => {
    const body = request.body;
    const rate = await taxes.update(tenantScope(request), request.params.id, {
      name: body.name,
      country: body.country,
      region: body.region,
      percent: body.percent,
      inclusive: body.inclusive,
      active: body.active,
      description: body.description,
    });
    return toApi(rate);
  };
  routes.patch("/v1/tax_rates/:id", update, updateHandler);
  routes.post("/v1/tax_rates/:id", update, updateHandler);

  const archive = {
    config: write,
    schema: {
      tags,
      summary: "Archive a tax rate (active: false)",
      description: "The rate stays readable but no longer applies. PATCH `active: true` restores it.",
      params: IdParams,
      response: { 200: rateRef, ...problemResponses(404) },
    },
  };
  const archiveHandler = async (request: FastifyRequest<{ Params: Static<typeof IdParams> }>) =>
    toApi(await taxes.archive(tenantScope(request), request.params.id));
  routes.post("/v1/tax_rates/:id/archive", archive, archiveHandler);
  routes.delete("/v1/tax_rates/:id", archive, archiveHandler);
}
