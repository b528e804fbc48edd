import type { FastifyInstance } from "fastify";
import { buildApp } from "./app.ts";
import { bootstrapOnce, type FirstStart } from "./bootstrap.ts";
import { systemClock } from "./clock.ts";
import type { Config } from "./config.ts";
import { type AppContext, createContext } from "./context.ts";
import { openDatabase } from "./db/database.ts";
import { migrateToLatest } from "./db/migrate.ts";

export interface RunningServer {
  app: FastifyInstance;
  context: AppContext;
  firstStart: FirstStart | undefined;
  url: string;
  /** Stops accepting connections, finishes in-flight requests, then closes the database. */
  stop(): Promise<void>;
}

export async function startServer(config: Config): Promise<RunningServer> {
  const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  try {
    await migrateToLatest(database.db);
    const context = await createContext(config, database, systemClock);
    const firstStart = await bootstrapOnce(context);
    const app = await buildApp(context, {
      logger: {
        level: config.logLevel,
        redact: { paths: ["req.headers.authorization", 'req.headers["x-api-key"]'], censor: "[redacted]" },
      },
    });
    await app.listen({ port: config.port, host: config.host });
    let stopping: Promise<void> | undefined;
    const stop = () => {
      stopping ??= (async () => {
        await app.close();
        await context.stop();
        await database.close();
      })();
      return stopping;
    };
    return { app, context, firstStart, url: config.publicUrl, stop };
  } catch (error) {
    await database.close().catch(() => {});
    throw error;
  }
}

export function firstStartBanner(firstStart: FirstStart, publicUrl: string): string {
  const lines = [
    "",
    "Aforo is ready. These secrets are shown once; store them now.",
    "",
    firstStart.operatorKey
      ? `  Operator key (manages tenants):   ${firstStart.operatorKey}`
      : "  Operator key: from AFORO_OPERATOR_KEY",
    `  Sandbox tenant:                   ${firstStart.sandbox.slug} (${firstStart.sandbox.id})`,
    `  Sandbox secret key (sk_test_):    ${firstStart.sandbox.testKey}`,
    "",
    `  API reference:  ${publicUrl}/docs`,
    `  OpenAPI:        ${publicUrl}/openapi.json`,
    "",
    `  Try: curl -H "Authorization: Bearer ${firstStart.sandbox.testKey}" -H "X-Tenant-Id: ${firstStart.sandbox.slug}" ${publicUrl}/v1/api_keys`,
    "",
  ];
  return lines.join("\n");
}
