import type { FastifyInstance } from "fastify";
import type { AppContext } from "../../../context.ts";
import { canAccessRoutes } from "./can-access.ts";
import { entitlementRoutes } from "./entitlements.ts";

export async function entitlementsRoutes(app: FastifyInstance, options: { context: AppContext }) {
  await canAccessRoutes(app, options);
  await entitlementRoutes(app, options);
}
