import { CompiledQuery, type Kysely, sql } from "kysely";
import PgBoss from "pg-boss";
import type { DatabaseHandle } from "../db/database.ts";
import type { Database } from "../db/schema.ts";
import type { JobHandler, JobQueue, SendOptions } from "./queue.ts";

export interface PgBossQueueOptions {
  /** How often an idle worker looks for jobs; a job sent by this process wakes it at once. */
  pollingIntervalSeconds?: number;
  /** Reported instead of thrown: pg-boss's maintenance runs on timers. */
  onError?: (error: Error) => void;
}

/**
 * pg-boss over the application's own Kysely connection, so the same code runs on PostgreSQL
 * (the pool) and on the embedded database (PGlite's single connection, shared in turn). pg-boss
 * sends its multi-statement plans without parameters; both drivers accept that.
 */
export class PgBossQueue implements JobQueue {
  readonly #db: Kysely<Database>;
  readonly #options: PgBossQueueOptions;
  readonly #queues = new Map<string, Promise<void>>();
  readonly #workers = new Map<string, string>();
  #boss: PgBoss | undefined;

  constructor(database: DatabaseHandle, options: PgBossQueueOptions = {}) {
    this.#db = database.db;
    this.#options = options;
  }

  async start(): Promise<void> {
    if (this.#boss) return;
    const db = this.#db;
    const boss = new PgBoss({
      db: { executeSql: executorOf(db) },
      schema: await jobSchema(db),
      // Jobs of a dead process come back after this long (bill runs also keep their own heartbeat).
      expireInHours: 4,
      retryLimit: 3,
      retryDelay: 30,
      retentionDays: 7,
      deleteAfterDays: 7,
    });
    boss.on("error", (error: Error) => this.#options.onError?.(error));
    await boss.start();
    this.#boss = boss;
  }

  async stop(): Promise<void> {
    const boss = this.#boss;
    this.#boss = undefined;
    this.#queues.clear();
    this.#workers.clear();
    await boss?.stop({ graceful: true, wait: true, timeout: 5_000 });
  }

  async send<T extends object>(
    name: string,
    data: T,
    options: SendOptions = {},
  ): Promise<string | undefined> {
    const boss = this.#started();
    await this.#queue(boss, name);
    const { transaction, ...jobOptions } = options;
    const id = await boss.send(name, data, {
      ...jobOptions,
      ...(transaction ? { db: { executeSql: executorOf(transaction) } } : {}),
    });
    // A worker in this process takes the job now instead of at its next poll.
    const workerId = this.#workers.get(name);
    if (id && workerId) boss.notifyWorker(workerId);
    return id ?? undefined;
  }

  async work<T extends object>(name: string, handler: JobHandler<T>): Promise<void> {
    const boss = this.#started();
    await this.#queue(boss, name);
    const workerId = await boss.work<T>(
      name,
      { batchSize: 1, pollingIntervalSeconds: this.#options.pollingIntervalSeconds ?? 2 },
      async (jobs) => {
        for (const job of jobs) await handler({ id: job.id, name: job.name, data: job.data });
      },
    );
    this.#workers.set(name, workerId);
  }

  async schedule(name: string, cron: string, data: object = {}): Promise<void> {
    const boss = this.#started();
    await this.#queue(boss, name);
    await boss.schedule(name, cron, data, { tz: "UTC" });
  }

  #started(): PgBoss {
    if (!this.#boss) throw new Error("the job queue is not started");
    return this.#boss;
  }

  #queue(boss: PgBoss, name: string): Promise<void> {
    let created = this.#queues.get(name);
    if (!created) {
      // pg-boss creates a queue with ON CONFLICT DO NOTHING: several processes may race here.
      created = boss.createQueue(name, { name });
      this.#queues.set(name, created);
    }
    return created;
  }
}

/** pg-boss's `executeSql` over a Kysely connection or transaction. */
function executorOf(db: Kysely<Database>) {
  return async (text: string, values?: unknown[]) => {
    const result = await db.executeQuery(CompiledQuery.raw(text, values ?? []));
    return { rows: result.rows as unknown[] };
  };
}

/**
 * pg-boss's own schema: "pgboss" beside the default schema; in a non-default schema (each
 * PostgreSQL test file gets one) its tables live in that schema, so dropping it drops them too.
 */
async function jobSchema(db: Kysely<Database>): Promise<string> {
  const { rows } = await sql<{ schema: string }>`select current_schema() as schema`.execute(db);
  const current = rows[0]?.schema ?? "public";
  return current === "public" ? "pgboss" : current;
}
