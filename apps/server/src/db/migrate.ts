import { type Kysely, type MigrationProvider, type MigrationResultSet, Migrator, sql } from "kysely";
import { migrations } from "./migrations/index.ts";
import type { Database } from "./schema.ts";

const provider: MigrationProvider = { getMigrations: async () => migrations };

export interface MigrationOutcome {
  applied: string[];
}

/** Applies every pending migration; throws with the failing migration's name. */
export async function migrateToLatest(db: Kysely<Database>): Promise<MigrationOutcome> {
  if (await everyMigrationApplied(db)) return { applied: [] };
  return outcomeOf(await (await migratorFor(db)).migrateToLatest());
}

/** Applies the migrations up to and including `name` (tests of a migration's data changes). */
export async function migrateUpTo(db: Kysely<Database>, name: string): Promise<MigrationOutcome> {
  return outcomeOf(await (await migratorFor(db)).migrateTo(name));
}

async function migratorFor(db: Kysely<Database>): Promise<Migrator> {
  // Keep the migrator's own tables in the schema we migrate: introspection sees every schema, so
  // another schema's kysely_migration tables (a shared database) would otherwise be taken for ours.
  const { rows } = await sql<{ schema: string }>`select current_schema() as schema`.execute(db);
  return new Migrator({ db, provider, migrationTableSchema: rows[0]?.schema ?? "public" });
}

function outcomeOf({ error, results }: MigrationResultSet): MigrationOutcome {
  const applied = (results ?? []).filter((r) => r.status === "Success").map((r) => r.migrationName);
  if (error) {
    const failed = (results ?? []).find((r) => r.status === "Error")?.migrationName ?? "unknown";
    throw new Error(`Migration ${failed} failed: ${error instanceof Error ? error.message : String(error)}`);
  }
  return { applied };
}

/**
 * A later start usually has nothing to apply. Kysely's migrator finds that out by introspecting
 * every table of the database (a fifth of an embedded start); one read of its bookkeeping table
 * answers the same. Anything pending, or no bookkeeping yet, goes through the migrator, which
 * takes its lock and decides again.
 */
async function everyMigrationApplied(db: Kysely<Database>): Promise<boolean> {
  const { rows } = await sql<{ present: boolean }>`
    select to_regclass(format('%I.kysely_migration', current_schema())) is not null as present
  `.execute(db);
  if (!rows[0]?.present) return false;
  const applied = await sql<{ name: string }>`select name from kysely_migration`.execute(db);
  const names = new Set(applied.rows.map((row) => row.name));
  return Object.keys(migrations).every((name) => names.has(name));
}
