import type { AppContext } from "./context.ts";

export interface FirstStart {
  operatorKey: string | undefined;
  sandbox: { id: string; slug: string; testKey: string };
}

const BOOTSTRAP_STATE = "bootstrap";

/**
 * On the very first start, make an operator key (unless AFORO_OPERATOR_KEY is set) and a ready
 * sandbox tenant, and return their secrets to print once. Later starts return undefined.
 */
export async function bootstrapOnce(context: AppContext): Promise<FirstStart | undefined> {
  const { db } = context.database;
  const done = await db
    .selectFrom("system_state")
    .select("key")
    .where("key", "=", BOOTSTRAP_STATE)
    .executeTakeFirst();
  if (done) return undefined;
  const operator = context.config.operatorKey
    ? undefined
    : await context.keys.createOperatorKey("first operator key");
  const created = await context.tenants
    .create({ name: "Sandbox", slug: "sandbox" })
    .catch(async () => undefined);
  const tenant = created?.tenant ?? (await context.tenants.get("sandbox"));
  const testKey =
    created?.keys.test.secret ??
    (await context.keys.create({ tenantId: tenant.id, mode: "test", kind: "secret", name: "bootstrap" }))
      .secret;
  await db
    .insertInto("system_state")
    .values({
      key: BOOTSTRAP_STATE,
      value: JSON.stringify({ at: context.clock.now().toISOString(), tenant_id: tenant.id }),
    })
    .execute();
  return { operatorKey: operator?.secret, sandbox: { id: tenant.id, slug: tenant.slug, testKey } };
}
