import { AforoError, newId } from "@aforo/core";
import type { Kysely } from "kysely";
import type { Clock } from "../../clock.ts";
import type { DatabaseHandle } from "../../db/database.ts";
import type { Page, PageRequest } from "../../db/pagination.ts";
import type { Database } from "../../db/schema.ts";
import type { TenantScope } from "../../http/route-config.ts";
import type { BillingEntities } from "../billing/ports.ts";
import {
  applyUpdate,
  type BillingEntityRecord,
  type CreateBillingEntityInput,
  formatInvoiceNumber,
  invoiceYear,
  newBillingEntity,
  type UpdateBillingEntityInput,
} from "./domain.ts";
import * as store from "./store.ts";

export type { BillingEntityRecord } from "./domain.ts";

/** How often a write is retried when a concurrent one took the default flag first. */
const DEFAULT_RACE_ATTEMPTS = 3;

/** The unique constraint a failed statement violated, if that is why it failed. */
function violatedConstraint(error: unknown): string | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const { code, constraint, message } = error as { code?: unknown; constraint?: unknown; message?: unknown };
  if (code !== "23505") return undefined;
  if (typeof constraint === "string" && constraint !== "") return constraint;
  return typeof message === "string" ? (/constraint "([^"]+)"/.exec(message)?.[1] ?? "") : "";
}

/** Maps a unique violation to the API's 409; the default-flag race is left to the retry loop. */
function conflictFor(
  error: unknown,
  entity: { code: string; invoicePrefix: string },
): AforoError | undefined {
  const constraint = violatedConstraint(error);
  if (constraint === undefined || constraint.includes("one_default")) return undefined;
  if (constraint.includes("invoice_prefix")) {
    return new AforoError(
      "conflict",
      `Invoice prefix '${entity.invoicePrefix}' is used by another billing entity.`,
      {
        errors: [
          {
            field: "invoice_prefix",
            message: "is already used by another billing entity in this tenant and mode",
          },
        ],
      },
    );
  }
  return new AforoError("conflict", `A billing entity with code '${entity.code}' already exists.`, {
    errors: [{ field: "code", message: "is already used by another billing entity in this tenant and mode" }],
  });
}

function isDefaultRace(error: unknown): boolean {
  return violatedConstraint(error)?.includes("one_default") === true;
}

function notFound(id: string): AforoError {
  return new AforoError("not-found", `No billing entity with id '${id}' exists in this tenant.`);
}

/**
 * The legal sellers of a tenant: each numbers its own invoices. Exactly one per tenant and mode
 * is the default (a partial unique index holds at most one; the service never leaves zero once
 * one exists), and subscriptions without an explicit entity bill through it.
 */
export class BillingEntityService implements BillingEntities {
  readonly #database: DatabaseHandle;
  readonly #clock: Clock;

  constructor(database: DatabaseHandle, clock: Clock) {
    this.#database = database;
    this.#clock = clock;
  }

  get #db(): Kysely<Database> {
    return this.#database.db;
  }

  async create(scope: TenantScope, input: CreateBillingEntityInput): Promise<BillingEntityRecord> {
    return this.#retryingDefaultRace(async () => {
      const draft = newBillingEntity(newId("billingEntity"), scope, input, false, this.#clock.now());
      return this.#db.transaction().execute(async (trx) => {
        await store.lockTenant(trx, scope.tenantId);
        const current = await store.findDefault(trx, scope);
        // The first entity of a scope is its default whatever the request says: there must be one.
        const entity = { ...draft, isDefault: input.isDefault === true || current === undefined };
        if (entity.isDefault) await store.clearDefault(trx, scope, entity.id);
        await store.insertEntity(trx, entity).catch((error: unknown) => {
          throw conflictFor(error, entity) ?? error;
        });
        return entity;
      });
    });
  }

  async update(
    scope: TenantScope,
    id: string,
    input: UpdateBillingEntityInput,
  ): Promise<BillingEntityRecord> {
    return this.#retryingDefaultRace(() =>
      this.#db.transaction().execute(async (trx) => {
        if (input.isDefault === true) await store.lockTenant(trx, scope.tenantId);
        const current = await store.findEntity(trx, scope, id, true);
        if (!current) throw notFound(id);
        const issued = await store.hasIssuedNumbers(trx, current.id);
        const next = applyUpdate(current, input, issued, this.#clock.now());
        if (next.isDefault && !current.isDefault) await store.clearDefault(trx, scope, next.id);
        return store.updateEntity(trx, scope, next).catch((error: unknown) => {
          throw conflictFor(error, next) ?? error;
        });
      }),
    );
  }

  async list(scope: TenantScope, page: PageRequest): Promise<Page<BillingEntityRecord>> {
    return store.listEntities(this.#db, scope, page);
  }

  async get(scope: TenantScope, id: string, db: Kysely<Database> = this.#db): Promise<BillingEntityRecord> {
    const entity = await store.findEntity(db, scope, id);
    if (!entity) throw notFound(id);
    return entity;
  }

  /**
   * Creates the default on first use with `insert … on conflict do nothing` rather than catching
   * a unique violation: a failed statement would abort the caller's transaction (`db` may be one).
   */
  async defaultEntity(scope: TenantScope, db: Kysely<Database> = this.#db): Promise<BillingEntityRecord> {
    const existing = await store.findDefault(db, scope);
    if (existing) return existing;
    const legalName = (await store.tenantName(db, scope.tenantId)) ?? "Default";
    const entity = newBillingEntity(
      newId("billingEntity"),
      scope,
      { code: "DEFAULT", name: "Default", legalName, baseCurrency: "USD", timezone: "UTC" },
      true,
      this.#clock.now(),
    );
    await store.insertEntityIfAbsent(db, entity);
    const created = await store.findDefault(db, scope);
    // The insert only yields to a default another transaction committed, which the read sees.
    if (!created)
      throw new Error(`no default billing entity for ${scope.tenantId}/${scope.mode} after insert`);
    return created;
  }

  /**
   * The zone whose midnights cut a new subscription's periods: the default entity's, or UTC while
   * the tenant has none (reading never creates one; the first invoice does, in UTC).
   */
  async defaultTimezone(scope: TenantScope, db: Kysely<Database> = this.#db): Promise<string> {
    return (await store.findDefault(db, scope))?.timezone ?? "UTC";
  }

  async nextInvoiceNumber(
    scope: TenantScope,
    entityId: string,
    issuedAt: Date,
    trx: Kysely<Database>,
  ): Promise<string> {
    const entity = await this.get(scope, entityId, trx);
    const year = invoiceYear(issuedAt, entity.timezone);
    const sequence = await store.takeNextNumber(trx, scope, entity.id, year);
    return formatInvoiceNumber(entity.invoicePrefix, year, sequence);
  }

  /** The entity's next `count` numbers, in order and without gaps (same lock as nextInvoiceNumber). */
  async nextInvoiceNumbers(
    scope: TenantScope,
    entityId: string,
    issuedAt: Date,
    count: number,
    trx: Kysely<Database>,
  ): Promise<string[]> {
    if (count <= 0) return [];
    const entity = await this.get(scope, entityId, trx);
    const year = invoiceYear(issuedAt, entity.timezone);
    const first = await store.takeNumberBlock(trx, scope, entity.id, year, count);
    return Array.from({ length: count }, (_, index) =>
      formatInvoiceNumber(entity.invoicePrefix, year, first + BigInt(index)),
    );
  }

  /** A concurrent first use (`defaultEntity`) can take the default flag between read and write. */
  async #retryingDefaultRace<T>(operation: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await operation();
      } catch (error) {
        if (!isDefaultRace(error) || attempt >= DEFAULT_RACE_ATTEMPTS) throw error;
      }
    }
  }
}
