import type { Kysely } from "kysely";
import type { Database } from "../db/schema.ts";

/** One unit of background work, as a handler receives it. */
export interface Job<T> {
  id: string;
  name: string;
  data: T;
}

export interface SendOptions {
  /** At most one queued-or-active job with this key per queue (pg-boss singleton semantics). */
  singletonKey?: string;
  /** How many times a failed (or expired) job is tried again. */
  retryLimit?: number;
  /** A job still active after this long is considered lost (its process died) and is retried. */
  expireInSeconds?: number;
  /** Not taken before this instant (a Date) or this many seconds from now. */
  startAfter?: Date | number;
  /**
   * Queues the job inside this transaction: it exists exactly when the transaction commits (an
   * outbox). The queue must already be worked or sent to by this process.
   */
  transaction?: Kysely<Database>;
}

export type JobHandler<T> = (job: Job<T>) => Promise<void>;

/**
 * Background work that survives the process: jobs are rows in the database, taken by whichever
 * process works the queue, retried when their process dies. Implemented by pg-boss on both
 * databases (see docs/adr/0009-jobs.md).
 */
export interface JobQueue {
  start(): Promise<void>;
  /** Stops taking jobs; waits briefly for running handlers, then leaves the rest to be retried. */
  stop(): Promise<void>;
  /** Queues a job; undefined when a singleton key suppressed it. */
  send<T extends object>(name: string, data: T, options?: SendOptions): Promise<string | undefined>;
  /** Runs `handler` for every job of the queue, one at a time in this process. */
  work<T extends object>(name: string, handler: JobHandler<T>): Promise<void>;
  /** Sends a job to the queue on a cron schedule (UTC), once across all processes. */
  schedule(name: string, cron: string, data?: object): Promise<void>;
}
