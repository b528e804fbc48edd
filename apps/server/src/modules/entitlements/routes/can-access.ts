import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance } from "fastify";
import type { AppContext } from "../../../context.ts";
import { tenantScope } from "../../../http/auth.ts";
import { sendProblem } from "../../../http/problem.ts";
import { problemResponses } from "../../../http/schemas.ts";
import { AllowedSchema, answerCanAccess, CanAccessBody, decisionHistogram } from "./can-access-contract.ts";

/**
 * POST /v1/canAccess through Fastify: what `inject`, the OpenAPI document and any request the
 * fast path passes over (fast-path.ts) use. Both answer through answerCanAccess.
 */
export async function canAccessRoutes(app: FastifyInstance, { context }: { context: AppContext }) {
  const routes = app.withTypeProvider<TypeBoxTypeProvider>();
  const decisionSeconds = decisionHistogram(context.metrics.registry);

  routes.post(
    "/v1/canAccess",
    {
      config: { scope: "entitlements:read", rateLimit: "canAccess", idempotent: false },
      schema: {
        tags: ["Entitlements"],
        summary: "Decide whether a request may pass: the status is the decision",
        description:
          "200 allow; 200 throttle with X-Aforo-Throttle: true; 429 (quota, rate) and 403 (feature not in plan, subscription inactive, key revoked, prepaid wallet empty) as problem documents carrying allowed:false, decision:block, reason, remaining and reset_at. Reads memory only. With consume:true the check and the usage increment are one atomic step; the usage is recorded as an event without delaying the answer.",
        body: CanAccessBody,
        response: { 200: AllowedSchema, ...problemResponses(403, 422) },
      },
    },
    async (request, reply) => {
      const answer = answerCanAccess(context, tenantScope(request), request.body, decisionSeconds);
      if (!answer.allowed) return sendProblem(reply, request, answer.problem, context.config.publicUrl);
      if (answer.throttle) reply.header("X-Aforo-Throttle", "true");
      return answer.body;
    },
  );
}
