import type { FastifyInstance } from "fastify";
import type { AppContext } from "../../../context.ts";
import { offeringRoutes } from "./offerings.ts";
import { promotionRoutes } from "./promotions.ts";
import { ratePlanRoutes } from "./rate-plans.ts";

/** Pricing Studio: rate plans and their versions, price previews, offerings, promotions. */
export async function pricingRoutes(app: FastifyInstance, options: { context: AppContext }) {
  await ratePlanRoutes(app, options);
  await offeringRoutes(app, options);
  await promotionRoutes(app, options);
}
