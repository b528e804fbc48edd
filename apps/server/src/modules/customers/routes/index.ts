import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { type Static, type TSchema, Type } from "typebox";
import type { AppContext } from "../../../context.ts";
import { tenantScope } from "../../../http/auth.ts";
import { listOf, Metadata, PaginationQuery, problemResponses } from "../../../http/schemas.ts";
import {
  type Customer,
  type CustomerAddress,
  type CustomerTax,
  customerStatuses,
  type UpdateCustomerInput,
} from "../domain.ts";

const CountryCode = Type.String({ pattern: "^[A-Z]{2}$", description: "ISO 3166-1 alpha-2, upper case" });
const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

const AddressInput = Type.Object({
  line1: Type.String({ minLength: 1, maxLength: 200 }),
  line2: Type.Optional(Nullable(Type.String({ maxLength: 200 }))),
  city: Type.String({ minLength: 1, maxLength: 100 }),
  state: Type.Optional(Nullable(Type.String({ maxLength: 100 }))),
  postal_code: Type.String({ minLength: 1, maxLength: 20 }),
  country: CountryCode,
});

const TaxInput = Type.Object({
  country: CountryCode,
  region: Type.Optional(Nullable(Type.String({ maxLength: 100, description: "state or province" }))),
  exempt: Type.Optional(Type.Boolean({ default: false })),
  tax_id: Type.Optional(Nullable(Type.String({ maxLength: 50 }))),
});

const Name = Type.String({ minLength: 1, maxLength: 200 });
const Email = Type.String({ format: "email", maxLength: 254 });
const ExternalId = Type.String({
  minLength: 1,
  maxLength: 100,
  description: "your id for the customer; unique per tenant and mode",
});
const Currency = Type.String({
  minLength: 1,
  maxLength: 10,
  description: "ISO 4217 code; an unknown code answers 422 unknown-currency",
});

const CreateCustomerBody = Type.Object({
  name: Name,
  email: Email,
  external_id: Type.Optional(Nullable(ExternalId)),
  currency: Currency,
  address: Type.Optional(Nullable(AddressInput)),
  tax: Type.Optional(Nullable(TaxInput)),
  metadata: Type.Optional(Metadata),
});

const UpdateCustomerBody = Type.Object({
  name: Type.Optional(Name),
  email: Type.Optional(Email),
  external_id: Type.Optional(Nullable(ExternalId)),
  currency: Type.Optional(Currency),
  address: Type.Optional(Nullable(AddressInput)),
  tax: Type.Optional(Nullable(TaxInput)),
  metadata: Type.Optional(Metadata),
});

export const CustomerSchema = Type.Object(
  {
    id: Type.String({ description: "cus_…" }),
    object: Type.Literal("customer"),
    name: Type.String(),
    email: Type.String(),
    external_id: Type.Union([Type.String(), Type.Null()]),
    currency: Type.String(),
    address: Type.Union([
      Type.Object({
        line1: Type.String(),
        line2: Type.Union([Type.String(), Type.Null()]),
        city: Type.String(),
        state: Type.Union([Type.String(), Type.Null()]),
        postal_code: Type.String(),
        country: Type.String(),
      }),
      Type.Null(),
    ]),
    tax: Type.Union([
      Type.Object({
        country: Type.String(),
        region: Type.Union([Type.String(), Type.Null()]),
        exempt: Type.Boolean(),
        tax_id: Type.Union([Type.String(), Type.Null()]),
      }),
      Type.Null(),
    ]),
    metadata: Type.Record(Type.String(), Type.String()),
    status: Type.Enum([...customerStatuses], {
      description:
        "ARCHIVED: deleted; still readable and resolvable by id or external_id, but takes no writes",
    }),
    created_at: Type.String({ format: "date-time" }),
    updated_at: Type.String({ format: "date-time" }),
  },
  { $id: "Customer" },
);

type AddressBody = Static<typeof AddressInput>;
type TaxBody = Static<typeof TaxInput>;

export function fromApiAddress(address: AddressBody | null | undefined): CustomerAddress | null | undefined {
  if (address === undefined || address === null) return address;
  return {
    line1: address.line1,
    line2: address.line2 ?? null,
    city: address.city,
    state: address.state ?? null,
    postalCode: address.postal_code,
    country: address.country,
  };
}

export function fromApiTax(tax: TaxBody | null | undefined): CustomerTax | null | undefined {
  if (tax === undefined || tax === null) return tax;
  return {
    country: tax.country,
    region: tax.region ?? null,
    exempt: tax.exempt ?? false,
    taxId: tax.tax_id ?? null,
  };
}

export function toApi(customer: Customer) {
  const { address, tax } = customer;
  return {
    id: customer.id,
    object: "customer" as const,
    name: customer.name,
    email: customer.email,
    external_id: customer.externalId,
    currency: customer.currency,
    address: address && {
      line1: address.line1,
      line2: address.line2,
      city: address.city,
      state: address.state,
      postal_code: address.postalCode,
      country: address.country,
    },
    tax: tax && { country: tax.country, region: tax.region, exempt: tax.exempt, tax_id: tax.taxId },
    metadata: customer.metadata,
    status: customer.status,
    created_at: customer.createdAt.toISOString(),
    updated_at: customer.updatedAt.toISOString(),
  };
}

const CustomerParams = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 100, description: "the customer's id (cus_…) or external_id" }),
});

const tags = ["Customers"];
const read = { scope: "customers:read" as const };
const write = { scope: "customers:write" as const };
const customerRef = Type.Ref("Customer");

/** Customers: `customers:read` to read, `customers:write` to change. */
export async function customerRoutes(app: FastifyInstance, { context }: { context: AppContext }) {
  const routes = app.withTypeProvider<TypeBoxTypeProvider>();
  const customers = context.customers;
  app.addSchema(CustomerSchema);

  routes.post(
    "/v1/customers",
    {
      config: write,
      schema: {
        tags,
        summary: "Create a customer",
        description:
          "A duplicate `external_id` in this tenant and mode answers 409 `conflict`; an unknown currency 422 `unknown-currency`.",
        body: CreateCustomerBody,
        response: { 201: customerRef, ...problemResponses(409, 422) },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const customer = await customers.create(tenantScope(request), {
        name: body.name,
        email: body.email,
        externalId: body.external_id,
        currency: body.currency,
        address: fromApiAddress(body.address),
        tax: fromApiTax(body.tax),
        metadata: body.metadata,
      });
      return reply.code(201).send(toApi(customer));
    },
  );

  routes.get(
    "/v1/customers",
    {
      config: read,
      schema: {
        tags,
        summary: "List customers, newest first",
        description:
          "`email` matches ignoring case. Archived customers are listed too unless `status` says otherwise.",
        querystring: Type.Object({
          ...PaginationQuery.properties,
          external_id: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
          email: Type.Optional(Type.String({ minLength: 1, maxLength: 254 })),
          status: Type.Optional(Type.Enum([...customerStatuses])),
        }),
        response: { 200: listOf(customerRef), ...problemResponses() },
      },
    },
    async (request) => {
      const query = request.query;
      const page = await customers.list(
        tenantScope(request),
        { externalId: query.external_id, email: query.email, status: query.status },
        { limit: query.limit, startingAfter: query.starting_after },
      );
      return { data: page.data.map(toApi), has_more: page.has_more };
    },
  );

  routes.get(
    "/v1/customers/:id",
    {
      config: read,
      schema: {
        tags,
        summary: "Get a customer by id or external_id",
        description: "Archived customers are returned with status ARCHIVED.",
        params: CustomerParams,
        response: { 200: customerRef, ...problemResponses(404) },
      },
    },
    async (request) => toApi(await customers.get(tenantScope(request), request.params.id)),
  );

  const update = {
    config: write,
    schema: {
      tags,
      summary: "Update a customer (fields given only)",
      description:
        "`null` clears `external_id`, `address` or `tax`; `metadata` replaces the whole map. An archived customer answers 409 `invalid-transition`.",
      params: CustomerParams,
      body: UpdateCustomerBody,
      response: { 200: customerRef, ...problemResponses(404, 409, 422) },
    },
  };
  const updateHandler = async (
    request: FastifyRequest<{
      Params: Static<typeof CustomerParams>;
      Body: Static<typeof UpdateCustomerBody>;
    }>,
  ) => {
    const body = request.body;
    const input: UpdateCustomerInput = {
      name: body.name,
      email: body.email,
      externalId: body.external_id,
      currency: body.currency,
      address: fromApiAddress(body.address),
      tax: fromApiTax(body.tax),
      metadata: body.metadata,
    };
    return toApi(await customers.update(tenantScope(request), request.params.id, input));
  };
  routes.patch("/v1/customers/:id", update, updateHandler);
  routes.post("/v1/customers/:id", update, updateHandler);

  routes.delete(
    "/v1/customers/:id",
    {
      config: write,
      schema: {
        tags,
        summary: "Archive a customer (soft delete)",
        description:
          "The customer gets status ARCHIVED and takes no more writes, but stays readable and resolvable by id or external_id (its events and invoices still name it); its external_id stays reserved. Archiving again changes nothing.",
        params: CustomerParams,
        response: { 200: customerRef, ...problemResponses(404) },
      },
    },
    async (request) => toApi(await customers.archive(tenantScope(request), request.params.id)),
  );
}
