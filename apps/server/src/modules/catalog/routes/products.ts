import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { type TSchema, Type } from "typebox";
import type { AppContext } from "../../../context.ts";
import { tenantScope } from "../../../http/auth.ts";
import { listOf, Metadata, PaginationQuery, problemResponses } from "../../../http/schemas.ts";
import {
  audiences,
  DEFAULT_AUDIENCE,
  DEFAULT_LIFECYCLE,
  DEFAULT_PUBLISH_STATUS,
  lifecycles,
  type Product,
  productTypes,
  publishStatuses,
} from "../domain/product.ts";

/** A string enum (`{enum: [...]}`), so OpenAPI lists the values and TypeScript knows them. */
export function oneOf<const T extends readonly string[]>(values: T, options: { description?: string } = {}) {
  return Type.Enum<[...T]>([...values], options);
}

const ProductTypeSchema = oneOf(productTypes);
const AudienceSchema = oneOf(audiences);
const LifecycleSchema = oneOf(lifecycles, {
  description:
    "EXPERIMENTAL → BETA | GA | RETIRED; BETA → GA | DEPRECATED; GA → DEPRECATED; DEPRECATED → GA | RETIRED; RETIRED is terminal.",
});
const PublishStatusSchema = oneOf(publishStatuses, {
  description:
    "DRAFT → IN_REVIEW | PUBLISHED | ARCHIVED; IN_REVIEW → DRAFT | PUBLISHED | ARCHIVED; PUBLISHED → ARCHIVED | DRAFT; ARCHIVED → DRAFT.",
});
const UnitRefs = Type.Array(Type.String({ minLength: 1, maxLength: 100 }), {
  maxItems: 100,
  description: "billable unit ids (bu_…) or keys",
});

export const ProductSchema = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal("product"),
    name: Type.String(),
    type: ProductTypeSchema,
    description: Type.Union([Type.String(), Type.Null()]),
    audience: AudienceSchema,
    lifecycle: LifecycleSchema,
    status: PublishStatusSchema,
    metadata: Type.Record(Type.String(), Type.String()),
    billable_unit_ids: Type.Array(Type.String()),
    created_at: Type.String({ format: "date-time" }),
    updated_at: Type.String({ format: "date-time" }),
  },
  { $id: "Product" },
);

export function toApi(product: Product) {
  return {
    id: product.id,
    object: "product" as const,
    name: product.name,
    type: product.type,
    description: product.description,
    audience: product.audience,
    lifecycle: product.lifecycle,
    status: product.status,
    metadata: product.metadata,
    billable_unit_ids: product.billableUnitIds,
    created_at: product.createdAt.toISOString(),
    updated_at: product.updatedAt.toISOString(),
  };
}

const CreateProductBody = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 200 }),
  type: ProductTypeSchema,
  description: Type.Optional(Type.Union([Type.String({ maxLength: 5000 }), Type.Null()])),
  status: Type.Optional(PublishStatusSchema),
  audience: Type.Optional(AudienceSchema),
  lifecycle: Type.Optional(LifecycleSchema),
  metadata: Type.Optional(Metadata),
  billable_unit_ids: Type.Optional(UnitRefs),
});

const UpdateProductBody = Type.Object({
  name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  type: Type.Optional(ProductTypeSchema),
  description: Type.Optional(Type.Union([Type.String({ maxLength: 5000 }), Type.Null()])),
  status: Type.Optional(PublishStatusSchema),
  audience: Type.Optional(AudienceSchema),
  lifecycle: Type.Optional(LifecycleSchema),
  metadata: Type.Optional(Metadata),
  billable_unit_ids: Type.Optional(
    Type.Array(Type.String({ minLength: 1, maxLength: 100 }), {
      maxItems: 100,
      description: "replaces the attached set; ids or keys",
    }),
  ),
});

const ProductParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }) });
const ProductUnitParams = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 100 }),
  unit_id: Type.String({ minLength: 1, maxLength: 100, description: "billable unit id or key" }),
});

const tags = ["Catalog"];
const read = { scope: "catalog:read" as const };
const write = { scope: "catalog:write" as const };
const productRef: TSchema = Type.Ref("Product");

export function productRoutes(app: FastifyInstance, context: AppContext): void {
  const routes = app.withTypeProvider<TypeBoxTypeProvider>();
  const catalog = context.catalog;

  routes.post(
    "/v1/products",
    {
      config: write,
      schema: {
        tags,
        summary: "Create a product",
        description: `Defaults: status ${DEFAULT_PUBLISH_STATUS}, lifecycle ${DEFAULT_LIFECYCLE}, audience ${DEFAULT_AUDIENCE}. \`billable_unit_ids\` attaches units by id or key.`,
        body: CreateProductBody,
        response: { 201: productRef, ...problemResponses(422) },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const product = await catalog.createProduct(tenantScope(request), {
        name: body.name,
        type: body.type,
        description: body.description,
        status: body.status,
        audience: body.audience,
        lifecycle: body.lifecycle,
        metadata: body.metadata,
        billableUnitIds: body.billable_unit_ids,
      });
      return reply.code(201).send(toApi(product));
    },
  );

  routes.get(
    "/v1/products",
    {
      config: read,
      schema: {
        tags,
        summary: "List products, newest first",
        querystring: Type.Object({
          ...PaginationQuery.properties,
          status: Type.Optional(PublishStatusSchema),
          type: Type.Optional(ProductTypeSchema),
          lifecycle: Type.Optional(LifecycleSchema),
        }),
        response: { 200: listOf(productRef), ...problemResponses() },
      },
    },
    async (request) => {
      const query = request.query;
      const page = await catalog.listProducts(
        tenantScope(request),
        { status: query.status, type: query.type, lifecycle: query.lifecycle },
        { limit: query.limit, startingAfter: query.starting_after },
      );
      return { data: page.data.map(toApi), has_more: page.has_more };
    },
  );

  routes.get(
    "/v1/products/:id",
    {
      config: read,
      schema: {
        tags,
        summary: "Get a product",
        params: ProductParams,
        response: { 200: productRef, ...problemResponses(404) },
      },
    },
    async (request) => toApi(await catalog.getProduct(tenantScope(request), request.params.id)),
  );

  const update = {
    config: write,
    schema: {
      tags,
      summary: "Update a product (fields given only)",
      description:
        "`lifecycle` and `status` moves follow their transition tables; a refused move answers 409 `invalid-transition`. `billable_unit_ids` replaces the attached set.",
      params: ProductParams,
      body: UpdateProductBody,
      response: { 200: productRef, ...problemResponses(404, 409, 422) },
    },
  };
  const updateHandler = async (
    request: FastifyRequest<{
      Params: { id: string };
      Body: {
        name?: string;
        type?: Product["type"];
        description?: string | null;
        status?: Product["status"];
        audience?: Product["audience"];
        lifecycle?: Product["lifecycle"];
        metadata?: Record<string, string>;
        billable_unit_ids?: string[];
      };
    }>,
  ) => {
    const body = request.body;
    const product = await catalog.updateProduct(tenantScope(request), request.params.id, {
      name: body.name,
      type: body.type,
      description: body.description,
      status: body.status,
      audience: body.audience,
      lifecycle: body.lifecycle,
      metadata: body.metadata,
      billableUnitIds: body.billable_unit_ids,
    });
    return toApi(product);
  };
  routes.patch("/v1/products/:id", update, updateHandler);
  routes.post("/v1/products/:id", update, updateHandler);

  const archive = {
    config: write,
    schema: {
      tags,
      summary: "Archive a product (soft: status ARCHIVED, still readable)",
      params: ProductParams,
      response: { 200: productRef, ...problemResponses(404) },
    },
  };
  const archiveHandler = async (request: FastifyRequest<{ Params: { id: string } }>) =>
    toApi(await catalog.archiveProduct(tenantScope(request), request.params.id));
  routes.post("/v1/products/:id/archive", archive, archiveHandler);
  routes.delete("/v1/products/:id", archive, archiveHandler);

  routes.post(
    "/v1/products/:id/billable_units",
    {
      config: write,
      schema: {
        tags,
        summary: "Attach billable units to a product",
        description: "Units already attached stay attached. Unknown or archived units answer 422.",
        params: ProductParams,
        body: Type.Object({
          billable_unit_ids: Type.Array(Type.String({ minLength: 1, maxLength: 100 }), {
            minItems: 1,
            maxItems: 100,
          }),
        }),
        response: { 200: productRef, ...problemResponses(404, 422) },
      },
    },
    async (request) =>
      toApi(
        await catalog.attachUnits(tenantScope(request), request.params.id, request.body.billable_unit_ids),
      ),
  );

  routes.delete(
    "/v1/products/:id/billable_units/:unit_id",
    {
      config: write,
      schema: {
        tags,
        summary: "Detach a billable unit from a product",
        params: ProductUnitParams,
        response: { 200: productRef, ...problemResponses(404) },
      },
    },
    async (request) =>
      toApi(await catalog.detachUnit(tenantScope(request), request.params.id, request.params.unit_id)),
  );
}
