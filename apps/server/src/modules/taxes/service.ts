import { AforoError, newId } from "@aforo/core";
import { type Kysely, sql } from "kysely";
import type { Clock } from "../../clock.ts";
import { followChanges } from "../../db/change-feed.ts";
import type { DatabaseHandle } from "../../db/database.ts";
import type { Page, PageRequest } from "../../db/pagination.ts";
import type { Database, Mode } from "../../db/schema.ts";
import type { TenantScope } from "../../http/route-config.ts";
import type { TaxableLine, TaxContext, TaxProvider, TaxResult } from "../billing/ports.ts";
import {
  applyUpdate,
  type CreateTaxRateInput,
  computeTax,
  newTaxRate,
  type TaxRate,
  type UpdateTaxRateInput,
} from "./domain.ts";
import * as store from "./store.ts";

export { taxContextOf } from "./context.ts";
export type { TaxRate } from "./domain.ts";

const CHANGES_CHANNEL = "aforo_tax_rates";

function scopeKey(scope: TenantScope): string {
  return `${scope.tenantId}:${scope.mode}`;
}

function scopeOfKey(key: string): TenantScope | undefined {
  const [tenantId, mode] = key.split(":");
  if (!tenantId || (mode !== "live" && mode !== "test")) return undefined;
  return { tenantId, mode: mode as Mode };
}

function notFound(id: string): AforoError {
  return new AforoError("not-found", `No tax rate with id '${id}' exists in this tenant.`);
}

/**
 * Tax rates, and the built-in TaxProvider over them. Every active rate is held in memory, per
 * tenant and mode: invoicing calls `calculate` inside its own transaction, and on the embedded
 * database (one connection) a query of ours would wait for that transaction forever. Writes here
 * reload their scope after commit; other processes hear of them through NOTIFY.
 */
export class TaxService implements TaxProvider {
  readonly #database: DatabaseHandle;
  readonly #clock: Clock;
  readonly #activeByScope = new Map<string, readonly TaxRate[]>();
  #loaded = false;

  constructor(database: DatabaseHandle, clock: Clock) {
    this.#database = database;
    this.#clock = clock;
  }

  get #db(): Kysely<Database> {
    return this.#database.db;
  }

  /** Loads every active rate and follows changes made by other processes. */
  async start(): Promise<() => Promise<void>> {
    const unlisten = await followChanges(
      this.#database,
      CHANGES_CHANNEL,
      (key) => {
        const scope = scopeOfKey(key);
        if (scope) void this.#reload(scope).catch(() => undefined);
      },
      async () => {
        const byScope = new Map<string, TaxRate[]>();
        for (const rate of await store.allActiveRates(this.#db)) {
          const key = scopeKey(rate);
          byScope.set(key, [...(byScope.get(key) ?? []), rate]);
        }
        // Replaced whole: a rate deactivated while notifications were lost must go too.
        for (const key of this.#activeByScope.keys()) if (!byScope.has(key)) this.#activeByScope.delete(key);
        for (const [key, rates] of byScope) this.#activeByScope.set(key, rates);
      },
    );
    this.#loaded = true;
    return unlisten;
  }

  async create(scope: TenantScope, input: CreateTaxRateInput): Promise<TaxRate> {
    const rate = newTaxRate(newId("taxRate"), scope, input, this.#clock.now());
    await this.#db.transaction().execute(async (trx) => {
      await store.insertRate(trx, rate);
      await this.#notify(trx, scope);
    });
    await this.#reload(scope);
    return rate;
  }

  async update(scope: TenantScope, id: string, input: UpdateTaxRateInput): Promise<TaxRate> {
    const updated = await this.#db.transaction().execute(async (trx) => {
      const current = await store.findRate(trx, scope, id, true);
      if (!current) throw notFound(id);
      const written = await store.updateRate(trx, scope, applyUpdate(current, input, this.#clock.now()));
      await this.#notify(trx, scope);
      return written;
    });
    await this.#reload(scope);
    return updated;
  }

  /** Archiving sets `active: false`: the rate stays readable (invoices name it) but stops applying. */
  async archive(scope: TenantScope, id: string): Promise<TaxRate> {
    return this.update(scope, id, { active: false });
  }

  async get(scope: TenantScope, id: string): Promise<TaxRate> {
    const rate = await store.findRate(this.#db, scope, id);
    if (!rate) throw notFound(id);
    return rate;
  }

  async list(scope: TenantScope, filter: store.TaxRateFilter, page: PageRequest): Promise<Page<TaxRate>> {
    return store.listRates(this.#db, scope, filter, page);
  }

  /**
   * `currency` and `at` are not used yet: rates are percentages without validity dates, so the
   * rates active now apply (previews and runs of past periods included).
   */
  async calculate(
    scope: TenantScope,
    context: TaxContext,
    _currency: string,
    lines: TaxableLine[],
    _at: Date,
  ): Promise<TaxResult> {
    if (!this.#loaded) await this.#reload(scope);
    return computeTax(this.#activeByScope.get(scopeKey(scope)) ?? [], context, lines);
  }

  async #reload(scope: TenantScope): Promise<void> {
    const rates = await store.activeRatesOf(this.#db, scope);
    if (rates.length === 0) this.#activeByScope.delete(scopeKey(scope));
    else this.#activeByScope.set(scopeKey(scope), rates);
  }

  /** Inside the writing transaction: listeners hear of the change only once it is committed. */
  async #notify(db: Kysely<Database>, scope: TenantScope): Promise<void> {
    if (this.#database.kind === "postgres")
      await sql`select pg_notify(${CHANGES_CHANNEL}, ${scopeKey(scope)})`.execute(db);
  }
}
