import type { FastifyInstance } from "fastify";
import type { AppContext } from "../../../context.ts";
import { BillableUnitSchema, billableUnitRoutes } from "./billable-units.ts";
import { ProductSchema, productRoutes } from "./products.ts";

/** Products and billable units: `catalog:read` to read, `catalog:write` to change. */
export async function catalogRoutes(app: FastifyInstance, { context }: { context: AppContext }) {
  app.addSchema(ProductSchema);
  app.addSchema(BillableUnitSchema);
  productRoutes(app, context);
  billableUnitRoutes(app, context);
}
