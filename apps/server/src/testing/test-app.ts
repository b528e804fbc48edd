import { randomBytes } from "node:crypto";
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from "fastify";
import pg from "pg";
import { buildApp } from "../app.ts";
import { ManualClock } from "../clock.ts";
import { type Config, loadConfig } from "../config.ts";
import { type AppContext, createContext } from "../context.ts";
import { type DatabaseHandle, openDatabase } from "../db/database.ts";
import { migrateToLatest } from "../db/migrate.ts";

export const TEST_OPERATOR_KEY = `afo_${"T".repeat(20)}${randomBytes(10).toString("hex")}`;
export const TEST_PUBLIC_URL = "http://aforo.test";

export interface TestTenant {
  id: string;
  slug: string;
  liveKey: string;
  testKey: string;
}

export interface RequestOptions {
  key?: string | undefined;
  tenant?: string | undefined;
  body?: unknown;
  headers?: Record<string, string>;
  query?: Record<string, string>;
}

export interface TestApp {
  app: FastifyInstance;
  context: AppContext;
  clock: ManualClock;
  database: DatabaseHandle;
  operatorKey: string;
  /** Sends a request through Fastify's inject (no socket). */
  request(
    method: InjectOptions["method"],
    url: string,
    options?: RequestOptions,
  ): Promise<LightMyRequestResponse>;
  createTenant(name?: string): Promise<TestTenant>;
  close(): Promise<void>;
}

/** Which database the integration tests run on: vitest's projects set this (see vitest.config.ts). */
export function testDatabaseKind(): "pglite" | "postgres" {
  return process.env.AFORO_TEST_DATABASE === "postgres" ? "postgres" : "pglite";
}

/** A database of its own for one test file: PGlite in memory, or a fresh PostgreSQL schema. */
export async function openTestDatabase(): Promise<{ database: DatabaseHandle; drop(): Promise<void> }> {
  if (testDatabaseKind() === "pglite") {
    const database = await openDatabase({ databaseUrl: undefined, dataDir: "memory://" });
    return { database, drop: () => database.close() };
  }
  const databaseUrl = process.env.DATABASE_URL;
  if (!databaseUrl) throw new Error("AFORO_TEST_DATABASE=postgres needs DATABASE_URL");
  const schema = `test_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: databaseUrl });
  await admin.connect();
  await admin.query(`create schema ${schema}`);
  await admin.end();
  const database = await openDatabase({ databaseUrl, dataDir: "", schema, poolSize: 5 });
  return {
    database,
    drop: async () => {
      await database.close();
      const cleanup = new pg.Client({ connectionString: databaseUrl });
      await cleanup.connect();
      await cleanup.query(`drop schema ${schema} cascade`);
      await cleanup.end();
    },
  };
}

export function testConfig(overrides: Partial<Config> = {}): Config {
  return {
    ...loadConfig({}),
    publicUrl: TEST_PUBLIC_URL,
    operatorKey: TEST_OPERATOR_KEY,
    logLevel: "silent",
    ...overrides,
  };
}

export async function createTestApp(
  options: { clock?: ManualClock; config?: Partial<Config> } = {},
): Promise<TestApp> {
  const clock = options.clock ?? new ManualClock();
  const { database, drop } = await openTestDatabase();
  await migrateToLatest(database.db);
  const context = await createContext(testConfig(options.config), database, clock);
  const app = await buildApp(context);
  await app.ready();

  const request: TestApp["request"] = (method, url, requestOptions = {}) => {
    const headers: Record<string, string> = { ...(requestOptions.headers ?? {}) };
    if (requestOptions.key) headers.authorization = `Bearer ${requestOptions.key}`;
    if (requestOptions.tenant) headers["x-tenant-id"] = requestOptions.tenant;
    const injectOptions: InjectOptions = { method, url, headers };
    if (requestOptions.query) injectOptions.query = requestOptions.query;
    if (requestOptions.body !== undefined) {
      injectOptions.payload =
        typeof requestOptions.body === "string" ? requestOptions.body : JSON.stringify(requestOptions.body);
      headers["content-type"] ??= "application/json";
    }
    return app.inject(injectOptions);
  };

  let tenantCount = 0;
  const createTenant = async (name?: string): Promise<TestTenant> => {
    tenantCount += 1;
    const response = await request("POST", "/v1/tenants", {
      key: TEST_OPERATOR_KEY,
      body: { name: name ?? `Tenant ${tenantCount} ${randomBytes(3).toString("hex")}` },
    });
    if (response.statusCode !== 201) throw new Error(`tenant creation failed: ${response.body}`);
    const body = response.json();
    return { id: body.id, slug: body.slug, liveKey: body.api_keys.live, testKey: body.api_keys.test };
  };

  return {
    app,
    context,
    clock,
    database,
    operatorKey: TEST_OPERATOR_KEY,
    request,
    createTenant,
    close: async () => {
      await app.close();
      await context.stop();
      await drop();
    },
  };
}
