import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { type Static, type TSchema, Type } from "typebox";
import type { AppContext } from "../../../context.ts";
import { tenantScope } from "../../../http/auth.ts";
import { IdParams, listOf, PaginationQuery, problemResponses } from "../../../http/schemas.ts";
import { type BillingEntityRecord, CODE_PATTERN, INVOICE_PREFIX_PATTERN } from "../domain.ts";

const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

const Code = Type.String({
  pattern: CODE_PATTERN,
  description: "upper case, 2–16 characters, e.g. US or EU; unique per tenant and mode; immutable",
});
const BaseCurrency = Type.String({
  minLength: 1,
  maxLength: 10,
  description: "ISO 4217; immutable. An unknown code answers 422 unknown-currency",
});
const Timezone = Type.String({
  minLength: 1,
  maxLength: 64,
  description:
    "IANA time zone (default UTC): subscriptions created while this is the default entity start their periods at its midnights, and it decides in which year an invoice is numbered",
});
const InvoicePrefix = Type.String({
  pattern: INVOICE_PREFIX_PATTERN,
  description:
    "invoice numbers read `<prefix>-<year>-<0001>`; defaults to the code; unique per tenant and mode; frozen once a number was issued",
});
const Name = Type.String({ minLength: 1, maxLength: 200 });
const TaxId = Type.String({ minLength: 1, maxLength: 50, description: "the entity's tax registration" });

const AddressInput = Type.Object({
  line1: Type.String({ minLength: 1, maxLength: 200 }),
  line2: Type.Optional(Nullable(Type.String({ maxLength: 200 }))),
  city: Type.String({ minLength: 1, maxLength: 100 }),
  state: Type.Optional(Nullable(Type.String({ maxLength: 100 }))),
  postal_code: Type.Optional(Nullable(Type.String({ maxLength: 20 }))),
  country: Type.String({ pattern: "^[A-Z]{2}$", description: "ISO 3166-1 alpha-2, upper case" }),
});
const AddressOutput = Type.Record(Type.String(), Type.String());

const CreateBody = Type.Object({
  code: Code,
  name: Name,
  legal_name: Name,
  base_currency: BaseCurrency,
  timezone: Type.Optional(Timezone),
  invoice_prefix: Type.Optional(InvoicePrefix),
  is_default: Type.Optional(Type.Boolean()),
  address: Type.Optional(Nullable(AddressInput)),
  tax_id: Type.Optional(Nullable(TaxId)),
});

const UpdateBody = Type.Object({
  code: Type.Optional(
    Type.String({ maxLength: 100, description: "immutable: a different value answers 422" }),
  ),
  base_currency: Type.Optional(
    Type.String({ maxLength: 100, description: "immutable: a different value answers 422" }),
  ),
  name: Type.Optional(Name),
  legal_name: Type.Optional(Name),
  timezone: Type.Optional(Timezone),
  invoice_prefix: Type.Optional(InvoicePrefix),
  is_default: Type.Optional(
    Type.Boolean({ description: "true moves the default here; false on the default answers 422" }),
  ),
  address: Type.Optional(Nullable(AddressInput)),
  tax_id: Type.Optional(Nullable(TaxId)),
});

export const BillingEntitySchema = Type.Object(
  {
    id: Type.String({ description: "be_…" }),
    object: Type.Literal("billing_entity"),
    code: Type.String(),
    name: Type.String(),
    legal_name: Type.String(),
    base_currency: Type.String(),
    timezone: Type.String(),
    invoice_prefix: Type.String(),
    is_default: Type.Boolean(),
    address: Nullable(AddressOutput),
    tax_id: Nullable(Type.String()),
    created_at: Type.String({ format: "date-time" }),
    updated_at: Type.String({ format: "date-time" }),
  },
  { $id: "BillingEntity" },
);

/** Keeps the keys given, dropping nulls: the port's address is a plain map of strings. */
export function fromApiAddress(
  address: Static<typeof AddressInput> | null | undefined,
): Record<string, string> | null | undefined {
  if (address === undefined || address === null) return address;
  const entries = Object.entries(address).filter(
    (entry): entry is [string, string] => typeof entry[1] === "string",
  );
  return Object.fromEntries(entries);
}

export function toApi(entity: BillingEntityRecord) {
  return {
    id: entity.id,
    object: "billing_entity" as const,
    code: entity.code,
    name: entity.name,
    legal_name: entity.legalName,
    base_currency: entity.baseCurrency,
    timezone: entity.timezone,
    invoice_prefix: entity.invoicePrefix,
    is_default: entity.isDefault,
    address: entity.address,
    tax_id: entity.taxId,
    created_at: entity.createdAt.toISOString(),
    updated_at: entity.updatedAt.toISOString(),
  };
}

const tags = ["Billing entities"];
const read = { scope: "billing:read" as const };
const write = { scope: "billing:write" as const };
const entityRef = Type.Ref("BillingEntity");

/** Billing entities: `billing:read` to read, `billing:write` to change. */
export async function billingEntityRoutes(app: FastifyInstance, { context }: { context: AppContext }) {
  const routes = app.withTypeProvider<TypeBoxTypeProvider>();
  const entities = context.billingEntities;
  app.addSchema(BillingEntitySchema);

  routes.post(
    "/v1/billing_entities",
    {
      config: write,
      schema: {
        tags,
        summary: "Create a billing entity (a legal seller that numbers its own invoices)",
        description:
          "The first entity of a tenant and mode becomes the default; `is_default: true` moves the default to the new one. A taken `code` or `invoice_prefix` answers 409 `conflict`; an unknown time zone 422.",
        body: CreateBody,
        response: { 201: entityRef, ...problemResponses(409, 422) },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const entity = await entities.create(tenantScope(request), {
        code: body.code,
        name: body.name,
        legalName: body.legal_name,
        baseCurrency: body.base_currency,
        timezone: body.timezone,
        invoicePrefix: body.invoice_prefix,
        isDefault: body.is_default,
        address: fromApiAddress(body.address),
        taxId: body.tax_id,
      });
      return reply.code(201).send(toApi(entity));
    },
  );

  routes.get(
    "/v1/billing_entities",
    {
      config: read,
      schema: {
        tags,
        summary: "List billing entities, newest first",
        querystring: PaginationQuery,
        response: { 200: listOf(entityRef), ...problemResponses() },
      },
    },
    async (request) => {
      const page = await entities.list(tenantScope(request), {
        limit: request.query.limit,
        startingAfter: request.query.starting_after,
      });
      return { data: page.data.map(toApi), has_more: page.has_more };
    },
  );

  routes.get(
    "/v1/billing_entities/:id",
    {
      config: read,
      schema: {
        tags,
        summary: "Get a billing entity",
        params: IdParams,
        response: { 200: entityRef, ...problemResponses(404) },
      },
    },
    async (request) => toApi(await entities.get(tenantScope(request), request.params.id)),
  );

  const update = {
    config: write,
    schema: {
      tags,
      summary: "Update a billing entity (fields given only)",
      description:
        "`code` and `base_currency` are immutable (a different value answers 422). `null` clears `address` or `tax_id`.",
      params: IdParams,
      body: UpdateBody,
      response: { 200: entityRef, ...problemResponses(404, 409, 422) },
    },
  };
  const updateHandler = async (
    request: FastifyRequest<{ Params: Static<typeof IdParams>; Body: Static<typeof UpdateBody> }>,
  ) => {
    const body = request.body;
    const entity = await entities.update(tenantScope(request), request.params.id, {
      code: body.code,
      baseCurrency: body.base_currency,
      name: body.name,
      legalName: body.legal_name,
      timezone: body.timezone,
      invoicePrefix: body.invoice_prefix,
      isDefault: body.is_default,
      address: fromApiAddress(body.address),
      taxId: body.tax_id,
    });
    return toApi(entity);
  };
  routes.patch("/v1/billing_entities/:id", update, updateHandler);
  routes.post("/v1/billing_entities/:id", update, updateHandler);
}
