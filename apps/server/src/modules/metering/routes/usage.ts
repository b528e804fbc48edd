import { AforoError, formatDecimal, parseDecimal } from "@aforo/core";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance } from "fastify";
import { Type } from "typebox";
import type { AppContext } from "../../../context.ts";
import { tenantScope } from "../../../http/auth.ts";
import { DecimalOutput, problemResponses, Timestamp } from "../../../http/schemas.ts";
import { AVERAGE_DECIMAL_PLACES, parseGroupBy, resolveRange, usageWindows } from "../domain/usage-query.ts";
import type { UsageAnswer } from "../read-service.ts";

const UsageResponse = Type.Object({
  data: Type.Array(
    Type.Object({
      customer_id: Type.String(),
      metric_id: Type.String({ description: "the billable unit's key" }),
      window_start: Type.String(),
      window_end: Type.String(),
      group: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
      value: DecimalOutput,
    }),
  ),
  total: DecimalOutput,
});

function rowsToApi(answer: UsageAnswer) {
  return answer.rows.map((row) => ({
    customer_id: row.customerId,
    metric_id: answer.unit.key,
    window_start: row.window.start.toISOString(),
    window_end: row.window.end.toISOString(),
    ...(row.group ? { group: row.group } : {}),
    value: row.value,
  }));
}

/** One unit's answer, or every unit's one after the other (by key) with the sum of their totals. */
function toApi(answers: readonly UsageAnswer[]) {
  const [only] = answers;
  if (answers.length === 1 && only) return { data: rowsToApi(only), total: only.total };
  const total = answers.reduce((sum, answer) => sum.plus(parseDecimal(answer.total)), parseDecimal("0"));
  return { data: answers.flatMap(rowsToApi), total: formatDecimal(total) };
}

export async function usageRoutes(app: FastifyInstance, { context }: { context: AppContext }) {
  const routes = app.withTypeProvider<TypeBoxTypeProvider>();

  routes.get(
    "/v1/usage",
    {
      config: { scope: "metering:read" },
      schema: {
        tags: ["Metering"],
        summary: "Aggregated usage of a billable unit (or of every unit), per customer, window and property",
        description: [
          "Counts only counted events (not FILTERED, not in reconciliation) with occurred_at in [from, to).",
          "`from` defaults to the start of the current UTC month, `to` to now. Windows are cut in UTC; the first and last are clipped to the range.",
          'Without `customer_id` there is one row per customer per window that has events; with it (and no `group_by`) every window appears, "0" when empty.',
          "`group_by` takes comma-separated property paths (`model`, `tokens.kind`).",
          `Aggregations follow the unit: COUNT events; SUM, MAX; AVG = sum / count rounded half-up to ${AVERAGE_DECIMAL_PLACES} decimal places; LATEST = the value of the event with the greatest occurred_at (then id); UNIQUE = distinct values; PERCENTILE_95 = nearest-rank over raw values.`,
          "`total` applies the unit's aggregation to the whole range (it is not the sum of the rows for MAX, AVG, LATEST, UNIQUE or PERCENTILE_95).",
        ].join(" "),
        querystring: Type.Object({
          metric_id: Type.Optional(
            Type.String({
              minLength: 1,
              maxLength: 100,
              description:
                "unit id or key; without it, every billable unit of the tenant, ordered by key, and `total` is the sum of their totals",
            }),
          ),
          customer_id: Type.Optional(
            Type.String({ minLength: 1, maxLength: 255, description: "id or external_id" }),
          ),
          from: Type.Optional(Timestamp),
          to: Type.Optional(Timestamp),
          window: Type.Optional(Type.Union(usageWindows.map((window) => Type.Literal(window)))),
          group_by: Type.Optional(Type.String({ maxLength: 400 })),
        }),
        response: { 200: UsageResponse, ...problemResponses(422) },
      },
    },
    async (request, reply) => {
      const scope = tenantScope(request);
      const query = request.query;
      const range = resolveRange(query.from, query.to, context.clock.now());
      const groupBy = parseGroupBy(query.group_by);
      let customerId: string | undefined;
      if (query.customer_id !== undefined) {
        const customer = context.customers.resolveCached(scope, query.customer_id);
        if (!customer) {
          throw new AforoError(
            "unknown-customer",
            `No customer '${query.customer_id}' exists in this tenant.`,
            {
              errors: [{ field: "customer_id", message: `unknown customer '${query.customer_id}'` }],
            },
          );
        }
        customerId = customer.id;
      }
      const metricRefs =
        query.metric_id !== undefined
          ? [query.metric_id]
          : (await context.meteringReads.allUnits(scope))
              .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
              .map((unit) => unit.id);
      const answers: UsageAnswer[] = [];
      for (const metricRef of metricRefs) {
        answers.push(
          await context.meteringReads.usage(scope, {
            metricRef,
            customerId,
            range,
            window: query.window ?? null,
            groupBy,
          }),
        );
      }
      const sources = new Set(answers.map((answer) => answer.source));
      if (sources.size > 0)
        reply.header("x-aforo-usage-source", sources.size === 1 ? [...sources][0] : "mixed");
      return toApi(answers);
    },
  );
}
