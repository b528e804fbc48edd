import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openTestDatabase } from "../testing/test-app.ts";
import type { DatabaseHandle } from "./database.ts";
import { migrateToLatest } from "./migrate.ts";
import { migrations } from "./migrations/index.ts";

describe("migrateToLatest", () => {
  let database: DatabaseHandle;
  let drop: () => Promise<void>;
  beforeAll(async () => {
    ({ database, drop } = await openTestDatabase());
  });
  afterAll(() => drop());

  it("applies every migration to an empty database, then nothing on a later start", async () => {
    expect((await migrateToLatest(database.db)).applied).toEqual(Object.keys(migrations).sort());
    expect((await migrateToLatest(database.db)).applied).toEqual([]);
  });
});
