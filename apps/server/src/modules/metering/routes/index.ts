import type { FastifyInstance } from "fastify";
import type { AppContext } from "../../../context.ts";
import { cloudEventRoutes } from "./cloudevents.ts";
import { meterRoutes } from "./meter.ts";

export async function meteringRoutes(app: FastifyInstance, options: { context: AppContext }) {
  await meterRoutes(app, options);
  await cloudEventRoutes(app, options);
}
