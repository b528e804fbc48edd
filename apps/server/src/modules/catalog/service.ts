import { AforoError, type FieldError, newId, notFound } from "@aforo/core";
import type { Kysely, Selectable } from "kysely";
import type { Clock } from "../../clock.ts";
import { announceChange, followChanges } from "../../db/change-feed.ts";
import type { DatabaseHandle } from "../../db/database.ts";
import type { Page, PageRequest } from "../../db/pagination.ts";
import type { BillableUnitsTable, Database } from "../../db/schema.ts";
import { ScopedDirectory } from "../../db/scoped-directory.ts";
import type { TenantScope } from "../../http/route-config.ts";
import {
  type Aggregation,
  type BillableUnit,
  type BillableUnitStatus,
  checkAggregationField,
  frozenFieldsChanged,
  isValidUnitKey,
  type UnitFilter,
} from "./domain/billable-unit.ts";
import { isValidFieldPath, validateFilters } from "./domain/filters.ts";
import {
  type Audience,
  checkLifecycleTransition,
  checkPublishTransition,
  DEFAULT_AUDIENCE,
  DEFAULT_LIFECYCLE,
  DEFAULT_PUBLISH_STATUS,
  type Lifecycle,
  type Product,
  type ProductType,
  type PublishStatus,
} from "./domain/product.ts";
import * as units from "./store/billable-units.ts";
import * as products from "./store/products.ts";

export interface CreateProductInput {
  name: string;
  type: ProductType;
  description?: string | null | undefined;
  status?: PublishStatus | undefined;
  audience?: Audience | undefined;
  lifecycle?: Lifecycle | undefined;
  metadata?: Record<string, string> | undefined;
  billableUnitIds?: readonly string[] | undefined;
}

export interface UpdateProductInput {
  name?: string | undefined;
  type?: ProductType | undefined;
  description?: string | null | undefined;
  status?: PublishStatus | undefined;
  audience?: Audience | undefined;
  lifecycle?: Lifecycle | undefined;
  metadata?: Record<string, string> | undefined;
  /** Replaces the attached set. */
  billableUnitIds?: readonly string[] | undefined;
}

export interface CreateBillableUnitInput {
  key: string;
  name: string;
  unitLabel: string;
  aggregation: Aggregation;
  field?: string | null | undefined;
  filters?: readonly UnitFilter[] | undefined;
  productIds?: readonly string[] | undefined;
}

export interface UpdateBillableUnitInput {
  key?: string | undefined;
  name?: string | undefined;
  unitLabel?: string | undefined;
  aggregation?: Aggregation | undefined;
  field?: string | null | undefined;
  filters?: readonly UnitFilter[] | undefined;
  /** Replaces the set of products the unit is attached to. */
  productIds?: readonly string[] | undefined;
}

/** A unique index refused the row: another request created the same key concurrently. */
function isUniqueViolation(error: unknown): boolean {
  return typeof error === "object" && error !== null && (error as { code?: unknown }).code === "23505";
}

function blank(value: string | undefined, field: string): FieldError[] {
  return value !== undefined && value.trim().length === 0 ? [{ field, message: "must not be blank" }] : [];
}

function refuse(errors: FieldError[], detail: string): void {
  if (errors.length > 0) throw new AforoError("unprocessable-entity", detail, { errors });
}

const UNITS_CHANNEL = "aforo_billable_units";

export class CatalogService {
  readonly #database: DatabaseHandle;
  readonly #clock: Clock;
  /** Every billable unit by id and key, for the metering hot path. */
  readonly #unitDirectory = new ScopedDirectory<BillableUnit>((unit) => [unit.id, unit.key]);

  constructor(database: DatabaseHandle, clock: Clock) {
    this.#database = database;
    this.#clock = clock;
  }

  /** Loads every unit into memory and follows changes other processes make. */
  async start(): Promise<() => Promise<void>> {
    return followChanges(
      this.#database,
      UNITS_CHANNEL,
      (unitId) => void this.#reloadUnit(unitId),
      async () => {
        for (const unit of await units.listAllUnits(this.#database.db)) this.#unitDirectory.put(unit);
      },
    );
  }

  /** A unit by id or key, from memory only (the hot path). */
  resolveUnitCached(scope: TenantScope, idOrKey: string): BillableUnit | undefined {
    return this.#unitDirectory.resolve(scope, idOrKey);
  }

  async #unitChanged(unit: BillableUnit): Promise<BillableUnit> {
    this.#unitDirectory.put(unit);
    await announceChange(this.#database, UNITS_CHANNEL, unit.id);
    return unit;
  }

  async #reloadUnit(unitId: string): Promise<void> {
    const unit = await units.findUnitById(this.#database.db, unitId);
    if (unit) this.#unitDirectory.put(unit);
    else this.#unitDirectory.remove(unitId);
  }

  /**
   * A billable unit by id (`bu_…`) or key (`api_calls`) in this tenant and mode. Pricing and
   * metering name units either way.
   */
  async findBillableUnit(
    scope: TenantScope,
    idOrKey: string,
    db: Kysely<Database> = this.#database.db,
  ): Promise<BillableUnit | undefined> {
    return units.findBillableUnit(db, scope, idOrKey);
  }

  /**
   * Records that rate plans or events now use these units, which freezes their aggregation.
   * Call it inside the transaction that creates the use.
   */
  async markBillableUnitsUsed(
    scope: TenantScope,
    unitIds: readonly string[],
    db: Kysely<Database> = this.#database.db,
  ): Promise<void> {
    await units.markUsed(db, scope, unitIds, this.#clock.now());
  }

  // Products

  async createProduct(scope: TenantScope, input: CreateProductInput): Promise<Product> {
    refuse(blank(input.name, "name"), "A product needs a name.");
    const now = this.#clock.now();
    const product: Product = {
      id: newId("product"),
      tenantId: scope.tenantId,
      mode: scope.mode,
      name: input.name.trim(),
      type: input.type,
      description: input.description ?? null,
      audience: input.audience ?? DEFAULT_AUDIENCE,
      lifecycle: input.lifecycle ?? DEFAULT_LIFECYCLE,
      status: input.status ?? DEFAULT_PUBLISH_STATUS,
      metadata: input.metadata ?? {},
      billableUnitIds: [],
      createdAt: now,
      updatedAt: now,
    };
    return this.#database.db.transaction().execute(async (trx) => {
      const unitIds = await this.#resolveUnits(trx, scope, input.billableUnitIds ?? [], "billable_unit_ids");
      await products.insertProduct(trx, product);
      await products.linkUnits(
        trx,
        scope,
        unitIds.map((unitId) => ({ productId: product.id, unitId })),
      );
      return this.#loadProduct(trx, scope, product.id);
    });
  }

  async listProducts(
    scope: TenantScope,
    filter: products.ProductFilter,
    page: PageRequest,
  ): Promise<Page<Product>> {
    return products.listProducts(this.#database.db, scope, filter, page);
  }

  async getProduct(scope: TenantScope, id: string): Promise<Product> {
    return this.#loadProduct(this.#database.db, scope, id);
  }

  /** Applies the fields given; lifecycle and status moves are checked against their tables. */
  async updateProduct(scope: TenantScope, id: string, input: UpdateProductInput): Promise<Product> {
    refuse(blank(input.name, "name"), "A product needs a name.");
    return this.#database.db.transaction().execute(async (trx) => {
      const current = await this.#loadProduct(trx, scope, id, true);
      const refusal =
        (input.lifecycle && checkLifecycleTransition(current.lifecycle, input.lifecycle)) ||
        (input.status && checkPublishTransition(current.status, input.status));
      if (refusal) throw new AforoError("invalid-transition", refusal.detail);
      const unitIds =
        input.billableUnitIds &&
        (await this.#resolveUnits(trx, scope, input.billableUnitIds, "billable_unit_ids"));
      const next: Product = {
        ...current,
        name: input.name?.trim() ?? current.name,
        type: input.type ?? current.type,
        description: input.description === undefined ? current.description : input.description,
        audience: input.audience ?? current.audience,
        lifecycle: input.lifecycle ?? current.lifecycle,
        status: input.status ?? current.status,
        metadata: input.metadata ?? current.metadata,
        updatedAt: this.#clock.now(),
      };
      await products.updateProduct(trx, scope, next);
      if (unitIds) {
        await products.unlinkUnits(trx, scope, { productId: id, exceptUnitIds: unitIds });
        await products.linkUnits(
          trx,
          scope,
          unitIds.map((unitId) => ({ productId: id, unitId })),
        );
      }
      return this.#loadProduct(trx, scope, id);
    });
  }

  /** Soft: the product is hidden from new discovery and stays readable. Archiving twice is a no-op. */
  async archiveProduct(scope: TenantScope, id: string): Promise<Product> {
    return this.#database.db.transaction().execute(async (trx) => {
      const current = await this.#loadProduct(trx, scope, id, true);
      if (current.status === "ARCHIVED") return current;
      const next: Product = { ...current, status: "ARCHIVED", updatedAt: this.#clock.now() };
      await products.updateProduct(trx, scope, next);
      return next;
    });
  }

  /** Attaches units (by id or key); units already attached stay attached. */
  async attachUnits(scope: TenantScope, productId: string, unitRefs: readonly string[]): Promise<Product> {
    return this.#database.db.transaction().execute(async (trx) => {
      const current = await this.#loadProduct(trx, scope, productId, true);
      const unitIds = await this.#resolveUnits(trx, scope, unitRefs, "billable_unit_ids");
      await products.linkUnits(
        trx,
        scope,
        unitIds.map((unitId) => ({ productId, unitId })),
      );
      await products.updateProduct(trx, scope, { ...current, updatedAt: this.#clock.now() });
      return this.#loadProduct(trx, scope, productId);
    });
  }

  /** Detaches one unit (by id or key); detaching a unit that is not attached changes nothing. */
  async detachUnit(scope: TenantScope, productId: string, unitRef: string): Promise<Product> {
    return this.#database.db.transaction().execute(async (trx) => {
      const current = await this.#loadProduct(trx, scope, productId, true);
      const unit = await units.findBillableUnit(trx, scope, unitRef);
      if (!unit) throw notFound("billable unit", unitRef);
      if (!current.billableUnitIds.includes(unit.id)) return current;
      await products.unlinkUnits(trx, scope, { productId, unitId: unit.id });
      await products.updateProduct(trx, scope, { ...current, updatedAt: this.#clock.now() });
      return this.#loadProduct(trx, scope, productId);
    });
  }

  // Billable units

  async createBillableUnit(scope: TenantScope, input: CreateBillableUnitInput): Promise<BillableUnit> {
    const field = input.field ?? null;
    const filters = input.filters ?? [];
    const errors: FieldError[] = [
      ...(isValidUnitKey(input.key)
        ? []
        : [
            {
              field: "key",
              message: "lower-case letters, digits, '_', '.' or '-', starting with a letter, not 'bu_'",
            },
          ]),
      ...blank(input.name, "name"),
      ...blank(input.unitLabel, "unit_label"),
      ...(field !== null && !isValidFieldPath(field)
        ? [{ field: "field", message: "must be a dotted path into properties, like tokens.input" }]
        : []),
      ...checkAggregationField(input.aggregation, field),
      ...validateFilters(filters),
    ];
    refuse(errors, "The billable unit breaks a rule; see errors.");
    const now = this.#clock.now();
    const unit: BillableUnit = {
      id: newId("billableUnit"),
      tenantId: scope.tenantId,
      mode: scope.mode,
      key: input.key,
      name: input.name.trim(),
      unitLabel: input.unitLabel.trim(),
      aggregation: input.aggregation,
      field,
      filters: filters.map(({ field, operator, value }) => ({ field, operator, value })),
      status: "ACTIVE",
      productIds: [],
      firstUsedAt: null,
      createdAt: now,
      updatedAt: now,
    };
    try {
      const created = await this.#database.db.transaction().execute(async (trx) => {
        const productIds = await this.#resolveProducts(trx, scope, input.productIds ?? []);
        if (await units.keyExists(trx, scope, unit.key)) throw this.#duplicateKey(unit.key);
        await units.insertUnit(trx, unit);
        await products.linkUnits(
          trx,
          scope,
          productIds.map((productId) => ({ productId, unitId: unit.id })),
        );
        return this.#loadUnit(trx, scope, unit.id);
      });
      return await this.#unitChanged(created);
    } catch (error) {
      if (isUniqueViolation(error)) throw this.#duplicateKey(unit.key);
      throw error;
    }
  }

  async listBillableUnits(
    scope: TenantScope,
    filter: units.UnitFilterQuery,
    page: PageRequest,
  ): Promise<Page<BillableUnit>> {
    return units.listUnits(this.#database.db, scope, filter, page);
  }

  async getBillableUnit(scope: TenantScope, idOrKey: string): Promise<BillableUnit> {
    return this.#loadUnit(this.#database.db, scope, idOrKey);
  }

  /**
   * Applies the fields given. What the unit measures (`aggregation`, `field`) is frozen once it is
   * used; its name, label, filters and product links can still change.
   */
  async updateBillableUnit(
    scope: TenantScope,
    idOrKey: string,
    input: UpdateBillableUnitInput,
  ): Promise<BillableUnit> {
    refuse(
      [
        ...blank(input.name, "name"),
        ...blank(input.unitLabel, "unit_label"),
        ...validateFilters(input.filters ?? []),
      ],
      "The billable unit breaks a rule; see errors.",
    );
    const updated = await this.#database.db.transaction().execute(async (trx) => {
      const current = await this.#loadUnit(trx, scope, idOrKey, true);
      if (input.key !== undefined && input.key !== current.key) {
        refuse(
          [{ field: "key", message: "cannot change; create a new unit instead" }],
          "A unit's key cannot change.",
        );
      }
      const frozen = frozenFieldsChanged(current, { aggregation: input.aggregation, field: input.field });
      if (frozen.length > 0) {
        throw new AforoError(
          "resource-in-use",
          `The ${frozen.join(" and ")} of a unit in use cannot change: '${current.key}' has been used since ${current.firstUsedAt?.toISOString()}. Create a new unit instead.`,
        );
      }
      const next: BillableUnit = {
        ...current,
        name: input.name?.trim() ?? current.name,
        unitLabel: input.unitLabel?.trim() ?? current.unitLabel,
        aggregation: input.aggregation ?? current.aggregation,
        field: input.field === undefined ? current.field : input.field,
        filters: input.filters
          ? input.filters.map(({ field, operator, value }) => ({ field, operator, value }))
          : current.filters,
        updatedAt: this.#clock.now(),
      };
      refuse(
        [
          ...(next.field !== null && !isValidFieldPath(next.field)
            ? [{ field: "field", message: "must be a dotted path into properties, like tokens.input" }]
            : []),
          ...checkAggregationField(next.aggregation, next.field),
        ],
        "The billable unit breaks a rule; see errors.",
      );
      const productIds = input.productIds && (await this.#resolveProducts(trx, scope, input.productIds));
      await units.updateUnit(trx, scope, next);
      if (productIds) {
        await products.unlinkUnits(trx, scope, { unitId: current.id, exceptProductIds: productIds });
        await products.linkUnits(
          trx,
          scope,
          productIds.map((productId) => ({ productId, unitId: current.id })),
        );
      }
      return this.#loadUnit(trx, scope, current.id);
    });
    return this.#unitChanged(updated);
  }

  /** Soft: the unit keeps its key and its history; archiving twice is a no-op. */
  async archiveBillableUnit(scope: TenantScope, idOrKey: string): Promise<BillableUnit> {
    const archived = await this.#database.db.transaction().execute(async (trx) => {
      const current = await this.#loadUnit(trx, scope, idOrKey, true);
      if (current.status === "ARCHIVED") return current;
      const next: BillableUnit = {
        ...current,
        status: "ARCHIVED" as BillableUnitStatus,
        updatedAt: this.#clock.now(),
      };
      await units.updateUnit(trx, scope, next);
      return next;
    });
    return this.#unitChanged(archived);
  }

  async #loadProduct(
    db: Kysely<Database>,
    scope: TenantScope,
    id: string,
    forUpdate = false,
  ): Promise<Product> {
    const product = await products.findProduct(db, scope, id, { forUpdate });
    if (!product) throw notFound("product", id);
    return product;
  }

  async #loadUnit(db: Kysely<Database>, scope: TenantScope, idOrKey: string, forUpdate = false) {
    const unit = await units.findBillableUnit(db, scope, idOrKey, { forUpdate });
    if (!unit) throw notFound("billable unit", idOrKey);
    return unit;
  }

  /** Unit ids for ids or keys, in the order given without repeats; unknown or archived ones → 422. */
  async #resolveUnits(
    db: Kysely<Database>,
    scope: TenantScope,
    refs: readonly string[],
    field: string,
  ): Promise<string[]> {
    const found = await units.findUnitsByIdOrKey(db, scope, refs);
    const errors: FieldError[] = [];
    const ids: string[] = [];
    refs.forEach((ref, index) => {
      const row: Selectable<BillableUnitsTable> | undefined = found.get(ref);
      if (!row)
        errors.push({
          field: `${field}[${index}]`,
          message: `no billable unit '${ref}' in this tenant and mode`,
        });
      else if (row.status === "ARCHIVED")
        errors.push({ field: `${field}[${index}]`, message: `billable unit '${ref}' is archived` });
      else if (!ids.includes(row.id)) ids.push(row.id);
    });
    refuse(errors, "Some billable units do not exist or are archived.");
    return ids;
  }

  async #resolveProducts(
    db: Kysely<Database>,
    scope: TenantScope,
    refs: readonly string[],
  ): Promise<string[]> {
    const found = await products.existingProductIds(db, scope, refs);
    const errors: FieldError[] = [];
    refs.forEach((ref, index) => {
      if (!found.has(ref))
        errors.push({
          field: `product_ids[${index}]`,
          message: `no product '${ref}' in this tenant and mode`,
        });
    });
    refuse(errors, "Some products do not exist.");
    return [...new Set(refs)];
  }

  #duplicateKey(key: string): AforoError {
    return new AforoError(
      "conflict",
      `A billable unit with key '${key}' already exists in this tenant and mode.`,
      {
        errors: [{ field: "key", message: "is already taken" }],
      },
    );
  }
}
