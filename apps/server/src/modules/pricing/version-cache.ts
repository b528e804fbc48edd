import type { Kysely } from "kysely";
import type { Database } from "../../db/schema.ts";
import type { RatePlanDefinition } from "./domain/rate-plan.ts";

export interface CachedVersion {
  tenantId: string;
  mode: "live" | "test";
  ratePlanId: string;
  version: number;
  definition: RatePlanDefinition;
}

/**
 * Every rate plan version in memory. Versions never change once written, so the cache is filled at
 * start, written through when a version is made here, and told by NOTIFY about versions made by
 * other processes: the entitlement edge reads plans without a query.
 */
export class RatePlanVersionCache {
  readonly #versions = new Map<string, CachedVersion>();
  readonly #listeners: ((version: CachedVersion) => void)[] = [];

  /** Told of versions learnt from other processes, so that snapshots built without them are dropped. */
  onLoaded(listener: (version: CachedVersion) => void): void {
    this.#listeners.push(listener);
  }

  static key(ratePlanId: string, version: number): string {
    return `${ratePlanId}:${version}`;
  }

  async loadAll(db: Kysely<Database>): Promise<void> {
    const rows = await db
      .selectFrom("rate_plan_versions")
      .select(["tenant_id", "mode", "rate_plan_id", "version", "definition"])
      .execute();
    for (const row of rows)
      this.put({
        tenantId: row.tenant_id,
        mode: row.mode,
        ratePlanId: row.rate_plan_id,
        version: row.version,
        definition: row.definition,
      });
  }

  async loadOne(
    db: Kysely<Database>,
    ratePlanId: string,
    version: number,
  ): Promise<CachedVersion | undefined> {
    const row = await db
      .selectFrom("rate_plan_versions")
      .select(["tenant_id", "mode", "rate_plan_id", "version", "definition"])
      .where("rate_plan_id", "=", ratePlanId)
      .where("version", "=", version)
      .executeTakeFirst();
    if (!row) return undefined;
    const cached = {
      tenantId: row.tenant_id,
      mode: row.mode,
      ratePlanId: row.rate_plan_id,
      version: row.version,
      definition: row.definition,
    };
    this.put(cached);
    for (const listener of this.#listeners) listener(cached);
    return cached;
  }

  put(version: CachedVersion): void {
    this.#versions.set(RatePlanVersionCache.key(version.ratePlanId, version.version), version);
  }

  get(ratePlanId: string, version: number): CachedVersion | undefined {
    return this.#versions.get(RatePlanVersionCache.key(ratePlanId, version));
  }
}
