import type { Command } from "commander";
import { openDatabase } from "../db/database.ts";
import { migrateToLatest } from "../db/migrate.ts";
import { configOrExit, fail, printJson } from "./output.ts";

export function registerDatabaseCommands(program: Command): void {
  program
    .command("migrate")
    .description("Apply pending database migrations (forward-only)")
    .option("--json", "print the result as JSON")
    .action(async (options: { json?: boolean }) => {
      const config = configOrExit();
      const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir }).catch(
        (error: Error) => fail(error.message),
      );
      try {
        const { applied } = await migrateToLatest(database.db);
        if (options.json) printJson({ applied, database: database.kind });
        else
          process.stdout.write(applied.length ? `Applied: ${applied.join(", ")}\n` : "Already up to date.\n");
      } finally {
        await database.close();
      }
    });
}
