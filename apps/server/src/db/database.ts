import { mkdir } from "node:fs/promises";
import { PGlite } from "@electric-sql/pglite";
import { Kysely, PostgresDialect, sql } from "kysely";
import pg from "pg";
import { acquireDataDirLock } from "./data-dir-lock.ts";
import { PGliteDialect } from "./pglite-dialect.ts";
import type { Database } from "./schema.ts";

export type DatabaseKind = "embedded" | "postgres";

export interface DatabaseHandle {
  db: Kysely<Database>;
  kind: DatabaseKind;
  /** Answers when the database takes a trivial query; used by /readyz. */
  ping(): Promise<void>;
  /**
   * Subscribes to a PostgreSQL notification channel, so several processes learn of changes (keys
   * revoked elsewhere). The embedded database is one process: there it never fires.
   */
  listen(channel: string, onMessage: (payload: string) => void): Promise<() => Promise<void>>;
  /**
   * Runs one statement as a named prepared statement (PostgreSQL only): each pooled connection
   * parses and plans it once. The hot path's group commit uses it; elsewhere Kysely is the way.
   * Undefined on the embedded database, whose single connection Kysely's dialect serialises.
   */
  prepared?: <Row>(name: string, text: string, values: readonly unknown[]) => Promise<Row[]>;
  close(): Promise<void>;
}

const INT8_OID = 20;
const NUMERIC_OID = 1700;

/**
 * Both drivers must hand back the same JavaScript types: BIGINT as bigint (money in minor units
 * must not pass through a float) and NUMERIC as its exact decimal string.
 */
const pgTypes = {
  getTypeParser(oid: number, format?: "text" | "binary") {
    if (oid === INT8_OID) return (value: string) => BigInt(value);
    if (oid === NUMERIC_OID) return (value: string) => value;
    return pg.types.getTypeParser(oid, format);
  },
};

export interface OpenDatabaseOptions {
  databaseUrl: string | undefined;
  /** Folder of the embedded database; `memory://` keeps it in memory (tests). */
  dataDir: string;
  /** PostgreSQL only: a schema to work in (tests give each file its own). */
  schema?: string;
  poolSize?: number;
}

export async function openDatabase(options: OpenDatabaseOptions): Promise<DatabaseHandle> {
  return options.databaseUrl ? openPostgres(options.databaseUrl, options) : openEmbedded(options.dataDir);
}

async function openPostgres(databaseUrl: string, options: OpenDatabaseOptions): Promise<DatabaseHandle> {
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max: options.poolSize ?? 10,
    types: pgTypes,
    ...(options.schema ? { options: `-c search_path=${options.schema}` } : {}),
  });
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  const notifications = new NotificationListener(databaseUrl);
  return {
    db,
    kind: "postgres",
    ping: async () => {
      await sql`select 1`.execute(db);
    },
    listen: (channel, onMessage) => notifications.listen(channel, onMessage),
    prepared: async <Row>(name: string, text: string, values: readonly unknown[]) => {
      const result = await pool.query({ name, text, values: [...values] });
      return result.rows as Row[];
    },
    close: async () => {
      await notifications.close();
      await db.destroy();
    },
  };
}

async function openEmbedded(dataDir: string): Promise<DatabaseHandle> {
  const inMemory = dataDir.startsWith("memory://");
  let releaseLock = async () => {};
  if (!inMemory) {
    await mkdir(dataDir, { recursive: true });
    releaseLock = await acquireDataDirLock(dataDir);
  }
  const client = await PGlite.create(dataDir, {
    parsers: { [INT8_OID]: (value: string) => BigInt(value), [NUMERIC_OID]: (value: string) => value },
  });
  const db = new Kysely<Database>({ dialect: new PGliteDialect(client) });
  return {
    db,
    kind: "embedded",
    ping: async () => {
      await sql`select 1`.execute(db);
    },
    listen: async () => async () => {},
    close: async () => {
      await db.destroy();
      await releaseLock();
    },
  };
}

type Handler = (payload: string) => void;

/**
 * One connection of its own for every LISTEN of a process, outside the pool: a listener per
 * channel taken from the pool would starve queries of connections.
 */
class NotificationListener {
  readonly #databaseUrl: string;
  readonly #handlers = new Map<string, Set<Handler>>();
  #client: Promise<pg.Client> | undefined;

  constructor(databaseUrl: string) {
    this.#databaseUrl = databaseUrl;
  }

  async listen(channel: string, handler: Handler): Promise<() => Promise<void>> {
    const client = await this.#connect();
    let handlers = this.#handlers.get(channel);
    if (!handlers) {
      handlers = new Set();
      this.#handlers.set(channel, handlers);
      await client.query(`listen ${pg.escapeIdentifier(channel)}`);
    }
    handlers.add(handler);
    return async () => {
      handlers.delete(handler);
    };
  }

  async close(): Promise<void> {
    const pending = this.#client;
    this.#client = undefined;
    if (pending) await (await pending).end().catch(() => {});
  }

  #connect(): Promise<pg.Client> {
    this.#client ??= (async () => {
      const client = new pg.Client({ connectionString: this.#databaseUrl });
      client.on("notification", (message) => {
        for (const handler of this.#handlers.get(message.channel) ?? []) handler(message.payload ?? "");
      });
      // A broken listener connection must not crash the process; changes are then picked up on restart.
      client.on("error", () => {});
      await client.connect();
      return client;
    })();
    return this.#client;
  }
}
