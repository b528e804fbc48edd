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
  listen(
    channel: string,
    onMessage: (payload: string) => void,
    /** Called after a lost listener connection is back: notifications sent meanwhile are gone. */
    resync?: () => void,
  ): Promise<() => Promise<void>>;
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
  // Named, so an operator finds it in pg_stat_activity (and a test can cut it).
  const notifications = new NotificationListener(
    databaseUrl,
    options.schema ? `aforo-listener:${options.schema}` : "aforo-listener",
  );
  return {
    db,
    kind: "postgres",
    ping: async () => {
      await sql`select 1`.execute(db);
    },
    listen: (channel, onMessage, resync) => notifications.listen(channel, onMessage, resync),
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
type Resync = () => void;

/** Waits before reconnecting a lost listener: 0.5 s, doubling up to 30 s. */
const RECONNECT_DELAYS_MS = [500, 1_000, 2_000, 5_000, 10_000, 30_000];

/**
 * One connection of its own for every LISTEN of a process, outside the pool: a listener per
 * channel taken from the pool would starve queries of connections.
 *
 * A lost connection (PostgreSQL restarted, a network cut) is reconnected with backoff and every
 * channel listened to again. Notifications sent while it was away are gone, so each subscriber's
 * `resync` is then called: caches reload what they hold instead of staying stale until restart
 * (a key revoked meanwhile in another process must not keep working here).
 */
class NotificationListener {
  readonly #databaseUrl: string;
  readonly #applicationName: string;
  readonly #handlers = new Map<string, Set<Handler>>();
  readonly #resyncs = new Set<Resync>();
  #client: Promise<pg.Client> | undefined;
  #closed = false;
  #attempt = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(databaseUrl: string, applicationName: string) {
    this.#databaseUrl = databaseUrl;
    this.#applicationName = applicationName;
  }

  async listen(channel: string, handler: Handler, resync?: Resync): Promise<() => Promise<void>> {
    const client = await this.#connect();
    let handlers = this.#handlers.get(channel);
    if (!handlers) {
      handlers = new Set();
      this.#handlers.set(channel, handlers);
      await client.query(`listen ${pg.escapeIdentifier(channel)}`);
    }
    handlers.add(handler);
    if (resync) this.#resyncs.add(resync);
    return async () => {
      handlers.delete(handler);
      if (resync) this.#resyncs.delete(resync);
    };
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    const pending = this.#client;
    this.#client = undefined;
    if (pending) await (await pending).end().catch(() => {});
  }

  #connect(): Promise<pg.Client> {
    this.#client ??= (async () => {
      const client = new pg.Client({
        connectionString: this.#databaseUrl,
        application_name: this.#applicationName,
      });
      client.on("notification", (message) => {
        for (const handler of this.#handlers.get(message.channel) ?? []) handler(message.payload ?? "");
      });
      // A broken listener connection must not crash the process: it is replaced (see #lost).
      client.on("error", () => this.#lost(client));
      client.on("end", () => this.#lost(client));
      try {
        await client.connect();
      } catch (error) {
        this.#client = undefined;
        throw error;
      }
      return client;
    })();
    return this.#client;
  }

  #lost(client: pg.Client): void {
    if (this.#closed || this.#timer) return;
    void this.#client?.then(
      (current) => {
        if (current !== client) return;
        this.#client = undefined;
        void client.end().catch(() => {});
        this.#scheduleReconnect();
      },
      () => {},
    );
  }

  #scheduleReconnect(): void {
    if (this.#closed || this.#timer) return;
    const delay = RECONNECT_DELAYS_MS[Math.min(this.#attempt, RECONNECT_DELAYS_MS.length - 1)] ?? 30_000;
    this.#attempt += 1;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#reconnect();
    }, delay);
    this.#timer.unref();
  }

  async #reconnect(): Promise<void> {
    if (this.#closed) return;
    try {
      const client = await this.#connect();
      for (const channel of this.#handlers.keys())
        await client.query(`listen ${pg.escapeIdentifier(channel)}`);
    } catch {
      const half = this.#client;
      this.#client = undefined;
      void half?.then((client) => client.end()).catch(() => {});
      this.#scheduleReconnect();
      return;
    }
    this.#attempt = 0;
    for (const resync of this.#resyncs) resync();
  }
}
