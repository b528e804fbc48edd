import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { type TSchema, Type } from "typebox";
import type { AppContext } from "../../../context.ts";
import { tenantScope } from "../../../http/auth.ts";
import { listOf, PaginationQuery, problemResponses } from "../../../http/schemas.ts";
import {
  type Aggregation,
  aggregations,
  BILLABLE_UNIT_KEY_PATTERN,
  type BillableUnit,
  type FilterOperator,
  filterOperators,
} from "../domain/billable-unit.ts";
import { oneOf } from "./products.ts";

const AggregationSchema = oneOf(aggregations, {
  description:
    "COUNT counts events; SUM, MAX, AVG, LATEST and PERCENTILE_95 aggregate `field` (or the event's `quantity`); UNIQUE counts distinct values of `field`.",
});
const OperatorSchema = oneOf(filterOperators);
const StatusSchema = oneOf(["ACTIVE", "ARCHIVED"] as const);

const FilterSchema = Type.Object({
  field: Type.String({ minLength: 1, maxLength: 200, description: "dotted path into properties" }),
  operator: OperatorSchema,
  value: Type.Optional(
    Type.Unknown({
      description:
        "IN/NOT_IN: an array; GREATER_THAN/LESS_THAN: a number or numeric string; otherwise a string, number or boolean",
    }),
  ),
});
const Filters = Type.Array(FilterSchema, {
  maxItems: 20,
  description:
    "All must match. A missing field never matches EQUALS, GREATER_THAN, LESS_THAN, CONTAINS or IN, and always matches their NOT_ forms.",
});
const FieldPath = Type.String({
  minLength: 1,
  maxLength: 200,
  description: "dotted path into the event's properties (tokens.input)",
});
const ProductIds = Type.Array(Type.String({ minLength: 1, maxLength: 100 }), { maxItems: 100 });

export const BillableUnitSchema = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal("billable_unit"),
    key: Type.String(),
    name: Type.String(),
    unit_label: Type.String(),
    aggregation: AggregationSchema,
    field: Type.Union([Type.String(), Type.Null()]),
    filters: Type.Array(
      Type.Object({ field: Type.String(), operator: OperatorSchema, value: Type.Unknown() }),
    ),
    status: StatusSchema,
    product_ids: Type.Array(Type.String()),
    in_use: Type.Boolean({
      description: "true once a rate plan or an event used the unit: aggregation and field are frozen",
    }),
    first_used_at: Type.Union([Type.String({ format: "date-time" }), Type.Null()]),
    created_at: Type.String({ format: "date-time" }),
    updated_at: Type.String({ format: "date-time" }),
  },
  { $id: "BillableUnit" },
);

export function toApi(unit: BillableUnit) {
  return {
    id: unit.id,
    object: "billable_unit" as const,
    key: unit.key,
    name: unit.name,
    unit_label: unit.unitLabel,
    aggregation: unit.aggregation,
    field: unit.field,
    filters: unit.filters,
    status: unit.status,
    product_ids: unit.productIds,
    in_use: unit.firstUsedAt !== null,
    first_used_at: unit.firstUsedAt?.toISOString() ?? null,
    created_at: unit.createdAt.toISOString(),
    updated_at: unit.updatedAt.toISOString(),
  };
}

const CreateUnitBody = Type.Object({
  key: Type.String({ pattern: BILLABLE_UNIT_KEY_PATTERN, description: "unique per tenant and mode" }),
  name: Type.String({ minLength: 1, maxLength: 200 }),
  unit_label: Type.String({ minLength: 1, maxLength: 100 }),
  aggregation: AggregationSchema,
  field: Type.Optional(Type.Union([FieldPath, Type.Null()])),
  filters: Type.Optional(Filters),
  product_ids: Type.Optional(ProductIds),
});

const UpdateUnitBody = Type.Object({
  key: Type.Optional(Type.String({ maxLength: 64, description: "cannot change; accepted when equal" })),
  name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  unit_label: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
  aggregation: Type.Optional(AggregationSchema),
  field: Type.Optional(Type.Union([FieldPath, Type.Null()])),
  filters: Type.Optional(Filters),
  product_ids: Type.Optional(
    Type.Array(Type.String({ minLength: 1, maxLength: 100 }), {
      maxItems: 100,
      description: "replaces the set of products the unit is attached to",
    }),
  ),
});

interface FilterBody {
  field: string;
  operator: FilterOperator;
  value?: unknown;
}

const UnitParams = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 100, description: "billable unit id (bu_…) or key" }),
});

const tags = ["Catalog"];
const read = { scope: "catalog:read" as const };
const write = { scope: "catalog:write" as const };
const unitRef: TSchema = Type.Ref("BillableUnit");

function filtersFromApi(filters: readonly FilterBody[] | undefined) {
  return filters?.map((filter) => ({ field: filter.field, operator: filter.operator, value: filter.value }));
}

export function billableUnitRoutes(app: FastifyInstance, context: AppContext): void {
  const routes = app.withTypeProvider<TypeBoxTypeProvider>();
  const catalog = context.catalog;

  routes.post(
    "/v1/billable_units",
    {
      config: write,
      schema: {
        tags,
        summary: "Create a billable unit",
        description:
          "A duplicate `key` answers 409 `conflict`. UNIQUE needs a `field`; filter values are checked per operator (422).",
        body: CreateUnitBody,
        response: { 201: unitRef, ...problemResponses(409, 422) },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const unit = await catalog.createBillableUnit(tenantScope(request), {
        key: body.key,
        name: body.name,
        unitLabel: body.unit_label,
        aggregation: body.aggregation,
        field: body.field,
        filters: filtersFromApi(body.filters),
        productIds: body.product_ids,
      });
      return reply.code(201).send(toApi(unit));
    },
  );

  routes.get(
    "/v1/billable_units",
    {
      config: read,
      schema: {
        tags,
        summary: "List billable units, newest first",
        querystring: Type.Object({
          ...PaginationQuery.properties,
          product_id: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
          status: Type.Optional(StatusSchema),
        }),
        response: { 200: listOf(unitRef), ...problemResponses() },
      },
    },
    async (request) => {
      const query = request.query;
      const page = await catalog.listBillableUnits(
        tenantScope(request),
        { productId: query.product_id, status: query.status },
        { limit: query.limit, startingAfter: query.starting_after },
      );
      return { data: page.data.map(toApi), has_more: page.has_more };
    },
  );

  routes.get(
    "/v1/billable_units/:id",
    {
      config: read,
      schema: {
        tags,
        summary: "Get a billable unit by id or key",
        params: UnitParams,
        response: { 200: unitRef, ...problemResponses(404) },
      },
    },
    async (request) => toApi(await catalog.getBillableUnit(tenantScope(request), request.params.id)),
  );

  const update = {
    config: write,
    schema: {
      tags,
      summary: "Update a billable unit (fields given only)",
      description:
        "Once the unit is in use (`in_use`), changing `aggregation` or `field` answers 409 `resource-in-use`: create a new unit instead. `product_ids` replaces the attached set.",
      params: UnitParams,
      body: UpdateUnitBody,
      response: { 200: unitRef, ...problemResponses(404, 409, 422) },
    },
  };
  const updateHandler = async (
    request: FastifyRequest<{
      Params: { id: string };
      Body: {
        key?: string;
        name?: string;
        unit_label?: string;
        aggregation?: Aggregation;
        field?: string | null;
        filters?: FilterBody[];
        product_ids?: string[];
      };
    }>,
  ) => {
    const body = request.body;
    const unit = await catalog.updateBillableUnit(tenantScope(request), request.params.id, {
      key: body.key,
      name: body.name,
      unitLabel: body.unit_label,
      aggregation: body.aggregation,
      field: body.field,
      filters: filtersFromApi(body.filters),
      productIds: body.product_ids,
    });
    return toApi(unit);
  };
  routes.patch("/v1/billable_units/:id", update, updateHandler);
  routes.post("/v1/billable_units/:id", update, updateHandler);

  const archive = {
    config: write,
    schema: {
      tags,
      summary: "Archive a billable unit (soft: status ARCHIVED, still readable)",
      params: UnitParams,
      response: { 200: unitRef, ...problemResponses(404) },
    },
  };
  const archiveHandler = async (request: FastifyRequest<{ Params: { id: string } }>) =>
    toApi(await catalog.archiveBillableUnit(tenantScope(request), request.params.id));
  routes.post("/v1/billable_units/:id/archive", archive, archiveHandler);
  routes.delete("/v1/billable_units/:id", archive, archiveHandler);
}
