import { AforoError, newId } from "@aforo/core";
import { type Kysely, sql } from "kysely";
import type { Clock } from "../../clock.ts";
import { followChanges } from "../../db/change-feed.ts";
import type { DatabaseHandle } from "../../db/database.ts";
import type { Page, PageRequest } from "../../db/pagination.ts";
import type { Database } from "../../db/schema.ts";
import type { TenantScope } from "../../http/route-config.ts";
import { CustomerDirectory } from "./directory.ts";
import {
  applyUpdate,
  archived,
  type CreateCustomerInput,
  type Customer,
  newCustomer,
  type UpdateCustomerInput,
} from "./domain.ts";
import * as store from "./store.ts";

export type { Customer } from "./domain.ts";

const CHANGES_CHANNEL = "aforo_customers";

function isUniqueViolation(error: unknown): boolean {
  return typeof error === "object" && error !== null && (error as { code?: unknown }).code === "23505";
}

function duplicateExternalId(externalId: string): AforoError {
  return new AforoError("conflict", `A customer with external_id '${externalId}' already exists.`, {
    errors: [
      { field: "external_id", message: "is already used by another customer in this tenant and mode" },
    ],
  });
}

function notFound(ref: string): AforoError {
  return new AforoError("not-found", `No customer with id or external_id '${ref}' exists in this tenant.`);
}

/**
 * Customers, with an in-memory directory of all of them: metering resolves `customer_id` (an id
 * or an external id) on every event, and must not pay a query for it. The directory is loaded on
 * `start()`, updated after each commit here, and follows other processes through NOTIFY.
 */
export class CustomerService {
  readonly directory = new CustomerDirectory();
  readonly #database: DatabaseHandle;
  readonly #clock: Clock;

  constructor(database: DatabaseHandle, clock: Clock) {
    this.#database = database;
    this.#clock = clock;
  }

  get #db(): Kysely<Database> {
    return this.#database.db;
  }

  /** Loads every customer into memory and follows changes made by other processes. */
  async start(): Promise<() => Promise<void>> {
    return followChanges(
      this.#database,
      CHANGES_CHANNEL,
      (id) => void this.#refresh(id),
      async () => {
        for await (const batch of store.allCustomers(this.#db)) {
          for (const customer of batch) this.directory.put(customer);
        }
      },
    );
  }

  async #refresh(id: string): Promise<void> {
    const customer = await store.findCustomerById(this.#db, id).catch(() => undefined);
    if (customer) this.directory.put(customer);
  }

  /** From memory only: the hot path's lookup. `ref` is the id or the external id. */
  resolveCached(scope: TenantScope, ref: string): Customer | undefined {
    return this.directory.resolve(scope, ref);
  }

  /** Archived customers are returned too (status ARCHIVED): history still names them. */
  async get(scope: TenantScope, ref: string, db: Kysely<Database> = this.#db): Promise<Customer> {
    const customer = await store.findCustomer(db, scope, ref);
    if (!customer) throw notFound(ref);
    return customer;
  }

  async list(scope: TenantScope, filter: store.CustomerFilter, page: PageRequest): Promise<Page<Customer>> {
    return store.listCustomers(this.#db, scope, filter, page);
  }

  async create(scope: TenantScope, input: CreateCustomerInput): Promise<Customer> {
    const customer = newCustomer(newId("customer"), scope, input, this.#clock.now());
    await this.#db
      .transaction()
      .execute(async (trx) => {
        if (customer.externalId && (await store.findCustomer(trx, scope, customer.externalId))) {
          // Also refuses an external id equal to another customer's id: lookups try ids first.
          throw duplicateExternalId(customer.externalId);
        }
        await store.insertCustomer(trx, customer);
        await this.#notify(trx, customer.id);
      })
      .catch((error: unknown) => {
        if (isUniqueViolation(error) && customer.externalId) throw duplicateExternalId(customer.externalId);
        throw error;
      });
    this.directory.put(customer);
    return customer;
  }

  async update(scope: TenantScope, ref: string, input: UpdateCustomerInput): Promise<Customer> {
    const updated = await this.#db
      .transaction()
      .execute(async (trx) => {
        const current = await store.findCustomer(trx, scope, ref, true);
        if (!current) throw notFound(ref);
        const next = applyUpdate(current, input, this.#clock.now());
        if (next.externalId && next.externalId !== current.externalId) {
          const holder = await store.findCustomer(trx, scope, next.externalId);
          if (holder && holder.id !== current.id) throw duplicateExternalId(next.externalId);
        }
        return this.#write(trx, scope, next);
      })
      .catch((error: unknown) => {
        if (isUniqueViolation(error) && input.externalId) throw duplicateExternalId(input.externalId);
        throw error;
      });
    this.directory.put(updated);
    return updated;
  }

  /** Soft delete: status ARCHIVED; still readable and resolvable. Archiving twice changes nothing. */
  async archive(scope: TenantScope, ref: string): Promise<Customer> {
    const result = await this.#db.transaction().execute(async (trx) => {
      const current = await store.findCustomer(trx, scope, ref, true);
      if (!current) throw notFound(ref);
      if (current.status === "ARCHIVED") return current;
      return this.#write(trx, scope, archived(current, this.#clock.now()));
    });
    this.directory.put(result);
    return result;
  }

  async #write(trx: Kysely<Database>, scope: TenantScope, next: Customer): Promise<Customer> {
    const written = await store.updateCustomer(trx, scope, next);
    // The row is locked (FOR UPDATE) since it was read, so its version cannot have moved.
    if (!written) throw new Error(`customer ${next.id} changed under a row lock`);
    await this.#notify(trx, written.id);
    return written;
  }

  /** Inside the writing transaction: listeners hear of the change only once it is committed. */
  async #notify(db: Kysely<Database>, customerId: string): Promise<void> {
    if (this.#database.kind === "postgres")
      await sql`select pg_notify(${CHANGES_CHANNEL}, ${customerId})`.execute(db);
  }
}
