import { type Kysely, type MigrationProvider, Migrator, sql } from "kysely";
import { migrations } from "./migrations/index.ts";
import type { Database } from "./schema.ts";

const provider: MigrationProvider = { getMigrations: async () => migrations };

export interface MigrationOutcome {
  applied: string[];
}

/** Applies every pending migration; throws with the failing migration's name. */
export async function migrateToLatest(db: Kysely<Database>): Promise<MigrationOutcome> {
  // Keep the migrator's own tables in the schema we migrate: introspection sees every schema, so
  // another schema's kysely_migration tables (a shared database) would otherwise be taken for ours.
  const { rows } = await sql<{ schema: string }>`select current_schema() as schema`.execute(db);
  const migrator = new Migrator({ db, provider, migrationTableSchema: rows[0]?.schema ?? "public" });
  const { error, results } = await migrator.migrateToLatest();
  const applied = (results ?? []).filter((r) => r.status === "Success").map((r) => r.migrationName);
  if (error) {
    const failed = (results ?? []).find((r) => r.status === "Error")?.migrationName ?? "unknown";
    throw new Error(`Migration ${failed} failed: ${error instanceof Error ? error.message : String(error)}`);
  }
  return { applied };
}
