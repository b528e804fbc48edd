import type { FastifyInstance } from "fastify";
import type { AppContext } from "../../../context.ts";

export async function catalogRoutes(_app: FastifyInstance, _options: { context: AppContext }) {}
