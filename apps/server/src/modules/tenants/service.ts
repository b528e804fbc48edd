import { AforoError, newId } from "@aforo/core";
import type { Clock } from "../../clock.ts";
import type { DatabaseHandle } from "../../db/database.ts";
import type { Page, PageRequest } from "../../db/pagination.ts";
import type { ApiKeyService, IssuedKey } from "../api-keys/service.ts";
import { isValidSlug, slugFromName, type Tenant } from "./domain.ts";
import * as store from "./store.ts";

export interface CreateTenantInput {
  name: string;
  slug?: string | undefined;
}

export interface CreatedTenant {
  tenant: Tenant;
  keys: { live: IssuedKey; test: IssuedKey };
}

/** Tenants by id and slug, in memory: every tenant-scoped request resolves `X-Tenant-Id` here. */
export class TenantService {
  readonly #byIdOrSlug = new Map<string, Tenant>();
  readonly #database: DatabaseHandle;
  readonly #keys: ApiKeyService;
  readonly #clock: Clock;

  constructor(database: DatabaseHandle, keys: ApiKeyService, clock: Clock) {
    this.#database = database;
    this.#keys = keys;
    this.#clock = clock;
  }

  async start(): Promise<void> {
    let startingAfter: string | undefined;
    for (;;) {
      const page = await store.listTenants(this.#database.db, { limit: 500, startingAfter });
      for (const tenant of page.data) this.#remember(tenant);
      const last = page.data.at(-1);
      if (!page.has_more || !last) break;
      startingAfter = last.id;
    }
  }

  /** Resolves an id or slug from memory, falling back to the database for tenants made elsewhere. */
  async resolve(idOrSlug: string): Promise<Tenant | undefined> {
    const known = this.#byIdOrSlug.get(idOrSlug);
    if (known) return known;
    const found = await store.findTenant(this.#database.db, idOrSlug);
    if (found) this.#remember(found);
    return found;
  }

  resolveCached(idOrSlug: string): Tenant | undefined {
    return this.#byIdOrSlug.get(idOrSlug);
  }

  async get(idOrSlug: string): Promise<Tenant> {
    const tenant = await this.resolve(idOrSlug);
    if (!tenant) throw new AforoError("not-found", `No tenant with id or slug '${idOrSlug}'.`);
    return tenant;
  }

  async list(page: PageRequest): Promise<Page<Tenant>> {
    return store.listTenants(this.#database.db, page);
  }

  /** Creates the tenant with one live and one sandbox secret key, in one transaction. */
  async create(input: CreateTenantInput): Promise<CreatedTenant> {
    const name = input.name.trim();
    if (name.length === 0) {
      throw new AforoError("unprocessable-entity", "A tenant needs a name.", {
        errors: [{ field: "name", message: "must not be blank" }],
      });
    }
    const slug = input.slug ?? (await this.#freeSlug(slugFromName(name)));
    if (!isValidSlug(slug)) {
      throw new AforoError("unprocessable-entity", `'${slug}' is not a valid slug.`, {
        errors: [
          { field: "slug", message: "3-63 lower-case letters, digits or hyphens, not starting with 'ten_'" },
        ],
      });
    }
    const tenant: Tenant = {
      id: newId("tenant"),
      slug,
      name,
      rateLimits: undefined,
      createdAt: this.#clock.now(),
    };
    const created = await this.#database.db.transaction().execute(async (trx) => {
      if (await store.slugExists(trx, slug)) {
        throw new AforoError("conflict", `A tenant with slug '${slug}' already exists.`);
      }
      await store.insertTenant(trx, tenant);
      const live = await this.#keys.create(
        { tenantId: tenant.id, mode: "live", kind: "secret", name: "default" },
        trx,
      );
      const test = await this.#keys.create(
        { tenantId: tenant.id, mode: "test", kind: "secret", name: "default" },
        trx,
      );
      return { tenant, keys: { live, test } };
    });
    this.#remember(tenant);
    return created;
  }

  /** Renames a tenant or sets its rate-limit overrides (operator only). */
  async update(
    idOrSlug: string,
    changes: { name?: string; rateLimits?: Tenant["rateLimits"] },
  ): Promise<Tenant> {
    const current = await this.get(idOrSlug);
    const updated = await this.#database.db
      .transaction()
      .execute((trx) => store.updateTenant(trx, current.id, changes));
    if (!updated) throw new AforoError("not-found", `No tenant with id or slug '${idOrSlug}'.`);
    this.#remember(updated);
    return updated;
  }

  async #freeSlug(base: string): Promise<string> {
    if (!(await store.slugExists(this.#database.db, base))) return base;
    for (let n = 2; n < 1000; n++) {
      const candidate = `${base}-${n}`;
      if (!(await store.slugExists(this.#database.db, candidate))) return candidate;
    }
    return `${base}-${Date.now().toString(36)}`;
  }

  #remember(tenant: Tenant): void {
    this.#byIdOrSlug.set(tenant.id, tenant);
    this.#byIdOrSlug.set(tenant.slug, tenant);
  }
}
