import type { FastifyInstance } from "fastify";
import type { AppContext } from "../../../context.ts";
import { importRoutes } from "../imports/routes.ts";
import { cloudEventRoutes } from "./cloudevents.ts";
import { deadLetterRoutes } from "./dead-letters.ts";
import { eventReadRoutes } from "./events-read.ts";
import { meterRoutes } from "./meter.ts";
import { usageRoutes } from "./usage.ts";

export async function meteringRoutes(app: FastifyInstance, options: { context: AppContext }) {
  await meterRoutes(app, options);
  await cloudEventRoutes(app, options);
  await eventReadRoutes(app, options);
  await usageRoutes(app, options);
  await deadLetterRoutes(app, options);
  await app.register(importRoutes, options);
}
