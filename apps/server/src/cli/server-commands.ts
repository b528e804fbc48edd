import { writeFile } from "node:fs/promises";
import type { Command } from "commander";
import { buildApp } from "../app.ts";
import { systemClock } from "../clock.ts";
import { createContext } from "../context.ts";
import { openDatabase } from "../db/database.ts";
import { migrateToLatest } from "../db/migrate.ts";
import { firstStartBanner, startServer } from "../server.ts";
import { configOrExit, fail } from "./output.ts";

export function registerServerCommands(program: Command): void {
  program
    .command("start")
    .description("Start the API server (embedded database unless DATABASE_URL is set)")
    .option("--json", "print the first-start secrets as JSON instead of a banner")
    .action(async (options: { json?: boolean }) => {
      const config = configOrExit();
      const server = await startServer(config).catch((error: Error) =>
        fail(`Could not start: ${error.message}`),
      );
      if (server.firstStart) {
        process.stdout.write(
          options.json
            ? `${JSON.stringify({ first_start: server.firstStart })}\n`
            : firstStartBanner(server.firstStart, config.publicUrl),
        );
      }
      server.app.log.info(
        { url: config.publicUrl, database: server.context.database.kind },
        `Aforo listening on ${config.publicUrl} (docs at ${config.publicUrl}/docs)`,
      );
      const shutdown = (signal: string) => {
        server.app.log.info({ signal }, "shutting down: finishing in-flight requests");
        const forced = setTimeout(() => process.exit(1), 25_000);
        forced.unref();
        server.stop().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.once("SIGTERM", () => shutdown("SIGTERM"));
      process.once("SIGINT", () => shutdown("SIGINT"));
    });

  program
    .command("openapi")
    .description("Write the OpenAPI 3.1 document generated from the route schemas")
    .option("--out <file>", "file to write (default: standard output)")
    .action(async (options: { out?: string }) => {
      const config = configOrExit();
      const database = await openDatabase({ databaseUrl: undefined, dataDir: "memory://" });
      await migrateToLatest(database.db);
      const context = await createContext(config, database, systemClock);
      const app = await buildApp(context);
      await app.ready();
      const document = `${JSON.stringify(app.swagger(), null, 2)}\n`;
      await app.close();
      await context.stop();
      await database.close();
      if (options.out) await writeFile(options.out, document);
      else process.stdout.write(document);
    });
}
