import { AforoError, type DecimalInput, formatDecimal, isKnownCurrency, newId } from "@aforo/core";
import type { Kysely } from "kysely";
import type { Clock } from "../../clock.ts";
import { announceChange, followChanges } from "../../db/change-feed.ts";
import type { DatabaseHandle } from "../../db/database.ts";
import type { Page, PageRequest } from "../../db/pagination.ts";
import type { Database } from "../../db/schema.ts";
import type { TenantScope } from "../../http/route-config.ts";
import type { CatalogService } from "../catalog/service.ts";
import {
  type BillingMode,
  canTransition,
  checkOfferingRules,
  defaultEscrow,
  guardedChanges,
  type Offering,
  type OfferingStatus,
} from "./domain/offering.ts";
import { type PricePreview, previewRatePlan } from "./domain/preview.ts";
import {
  checkPromotionRules,
  normalizeCode,
  type Promotion,
  type PromotionDuration,
} from "./domain/promotion.ts";
import {
  checkRatePlan,
  type RatePlanInput,
  type RatePlanVersion,
  type UnitReference,
  unitIdsOf,
  unitReferencesOf,
} from "./domain/rate-plan.ts";
import * as offerings from "./store/offerings.ts";
import * as promotions from "./store/promotions.ts";
import * as ratePlans from "./store/rate-plans.ts";
import { RatePlanVersionCache } from "./version-cache.ts";

export interface OfferingInput {
  name: string;
  description?: string | null | undefined;
  rate_plan_ids: string[];
  billing_mode: BillingMode;
  trial_days?: number | undefined;
  escrow?: { low_balance_threshold: DecimalInput; on_empty: "BLOCK" | "ALERT" } | null | undefined;
  initial_credits?: DecimalInput | null | undefined;
  currency?: string | null | undefined;
  status?: OfferingStatus | undefined;
}

export type UpdateOfferingInput = Partial<OfferingInput>;

export interface PromotionInput {
  code: string;
  percent_off?: DecimalInput | undefined;
  amount_off?: DecimalInput | undefined;
  currency?: string | undefined;
  duration: PromotionDuration;
  duration_in_periods?: number | undefined;
  expires_at?: string | undefined;
  max_redemptions?: number | undefined;
  offering_ids?: string[] | undefined;
}

/** Answers whether an offering has live subscriptions; the subscriptions module installs the real one. */
export type SubscriptionProbe = (
  scope: TenantScope,
  offeringId: string,
  db: Kysely<Database>,
) => Promise<boolean>;

export type PricePreviewResult = PricePreview & { rate_plan_id: string; version: number };

function unprocessable(detail: string, errors: { field: string; message: string }[]): AforoError {
  return new AforoError("unprocessable-entity", detail, { errors });
}

function upperCurrency(currency: string): string {
  return currency.trim().toUpperCase();
}

function requireKnownCurrency(currency: string, field = "currency"): void {
  if (!isKnownCurrency(currency)) {
    throw new AforoError("unknown-currency", `'${currency}' is not an ISO 4217 currency Aforo knows.`, {
      errors: [{ field, message: `'${currency}' is not a known ISO 4217 currency` }],
    });
  }
}

function isUniqueViolation(error: unknown): boolean {
  return typeof error === "object" && error !== null && (error as { code?: unknown }).code === "23505";
}

const VERSIONS_CHANNEL = "aforo_rate_plan_versions";

export class PricingService {
  readonly #database: DatabaseHandle;
  readonly #clock: Clock;
  readonly #catalog: CatalogService;
  #subscriptionProbe: SubscriptionProbe = async () => false;

  /** Every version in memory, for the entitlement edge. */
  readonly versions = new RatePlanVersionCache();

  constructor(database: DatabaseHandle, clock: Clock, catalog: CatalogService) {
    this.#database = database;
    this.#clock = clock;
    this.#catalog = catalog;
  }

  /** Fills the version cache and follows versions made by other processes. */
  async start(): Promise<() => Promise<void>> {
    return followChanges(
      this.#database,
      VERSIONS_CHANNEL,
      (payload) => {
        const [ratePlanId, version] = payload.split(":");
        if (ratePlanId && version) void this.versions.loadOne(this.#database.db, ratePlanId, Number(version));
      },
      () => this.versions.loadAll(this.#database.db),
    );
  }

  async #versionWritten(version: RatePlanVersion): Promise<RatePlanVersion> {
    this.versions.put({
      tenantId: version.tenantId,
      mode: version.mode,
      ratePlanId: version.id,
      version: version.version,
      definition: version.definition,
    });
    await announceChange(this.#database, VERSIONS_CHANNEL, `${version.id}:${version.version}`);
    return version;
  }

  get #db(): Kysely<Database> {
    return this.#database.db;
  }

  // ---- Rate plans ---------------------------------------------------------------------------

  /** Creates a rate plan at version 1 and marks its billable units as used, in one transaction. */
  async createRatePlan(scope: TenantScope, input: RatePlanInput): Promise<RatePlanVersion> {
    const id = newId("ratePlan");
    await this.#db.transaction().execute(async (trx) => {
      const now = this.#clock.now();
      await ratePlans.insertRatePlan(trx, scope, id, now);
      await this.#writeVersion(trx, scope, id, 1, input, now);
    });
    return this.#versionWritten(await this.getRatePlan(scope, id));
  }

  /** Adds version n+1 with the whole new definition; earlier versions are never touched. */
  async createRatePlanVersion(
    scope: TenantScope,
    id: string,
    input: RatePlanInput,
  ): Promise<RatePlanVersion> {
    const version = await this.#db.transaction().execute(async (trx) => {
      const latest = await ratePlans.lockLatestVersion(trx, scope, id);
      if (latest === undefined) throw notFoundRatePlan(id);
      const now = this.#clock.now();
      await this.#writeVersion(trx, scope, id, latest + 1, input, now);
      await ratePlans.setLatestVersion(trx, scope, id, latest + 1, now);
      return latest + 1;
    });
    return this.#versionWritten(await this.getRatePlan(scope, id, version));
  }

  async #writeVersion(
    trx: Kysely<Database>,
    scope: TenantScope,
    id: string,
    version: number,
    raw: RatePlanInput,
    now: Date,
  ): Promise<void> {
    const input = { ...raw, currency: upperCurrency(raw.currency) };
    requireKnownCurrency(input.currency);
    const units = new Map<string, UnitReference | undefined>();
    for (const reference of unitReferencesOf(input)) {
      units.set(reference, await this.#catalog.findBillableUnit(scope, reference, trx));
    }
    const checked = checkRatePlan(input, (reference) => units.get(reference));
    if (!checked.ok) throw unprocessable("The rate plan breaks pricing rules.", checked.issues);
    const unitIds = unitIdsOf(checked.definition);
    await ratePlans.insertVersion(trx, scope, id, version, checked.definition, unitIds, now);
    await this.#catalog.markBillableUnitsUsed(scope, unitIds, trx);
  }

  /** The latest version, or the one asked for. */
  async getRatePlan(scope: TenantScope, id: string, version?: number): Promise<RatePlanVersion> {
    const found = await ratePlans.findVersion(this.#db, scope, id, version);
    if (found) return found;
    if (version !== undefined && (await ratePlans.findVersion(this.#db, scope, id))) {
      throw new AforoError("not-found", `Rate plan '${id}' has no version ${version}.`);
    }
    throw notFoundRatePlan(id);
  }

  async listRatePlans(scope: TenantScope, page: PageRequest): Promise<Page<RatePlanVersion>> {
    return ratePlans.listLatest(this.#db, scope, page);
  }

  async listRatePlanVersions(
    scope: TenantScope,
    id: string,
    page: { limit: number; startingAfter?: number | undefined },
  ): Promise<Page<RatePlanVersion>> {
    await this.getRatePlan(scope, id);
    return ratePlans.listVersions(this.#db, scope, id, page);
  }

  /** Rates quantities (keyed by unit key or id) against a stored version with the billing engine. */
  async previewPrice(
    scope: TenantScope,
    id: string,
    quantities: Record<string, DecimalInput>,
    version?: number,
  ): Promise<PricePreviewResult> {
    const plan = await this.getRatePlan(scope, id, version);
    const preview = previewRatePlan(plan.definition, quantities);
    return { ...preview, rate_plan_id: plan.id, version: plan.version };
  }

  // ---- Offerings ----------------------------------------------------------------------------

  /**
   * Installs the check "does this offering have subscriptions?". Until the subscriptions module
   * installs one, no offering has any and every edit is allowed.
   */
  setSubscriptionProbe(probe: SubscriptionProbe): void {
    this.#subscriptionProbe = probe;
  }

  /** Guard for edits that would change what subscribed customers pay (see guardedChanges). */
  async hasSubscriptions(
    scope: TenantScope,
    offeringId: string,
    db: Kysely<Database> = this.#db,
  ): Promise<boolean> {
    return this.#subscriptionProbe(scope, offeringId, db);
  }

  async createOffering(scope: TenantScope, input: OfferingInput): Promise<Offering> {
    return this.#db.transaction().execute(async (trx) => {
      const now = this.#clock.now();
      const draft: Offering = {
        id: newId("offering"),
        tenantId: scope.tenantId,
        mode: scope.mode,
        name: input.name,
        description: input.description ?? null,
        ratePlanIds: input.rate_plan_ids,
        billingMode: input.billing_mode,
        trialDays: input.trial_days ?? 0,
        escrow: null,
        initialCredits: null,
        currency: null,
        status: input.status ?? "DRAFT",
        createdAt: now,
        updatedAt: now,
      };
      const offering = await this.#settle(trx, scope, draft, {
        escrow: input.escrow ?? null,
        initialCredits: input.initial_credits ?? null,
        currency: input.currency ?? null,
      });
      await offerings.insertOffering(trx, offering);
      return offering;
    });
  }

  /** Checks the rate plans and money fields of an offering and fills in what follows from them. */
  async #settle(
    trx: Kysely<Database>,
    scope: TenantScope,
    offering: Offering,
    asked: {
      escrow: OfferingInput["escrow"] | null;
      initialCredits: DecimalInput | null;
      currency: string | null;
    },
  ): Promise<Offering> {
    const issues: { field: string; message: string }[] = [];
    const seen = new Set<string>();
    offering.ratePlanIds.forEach((id, index) => {
      if (seen.has(id))
        issues.push({ field: `rate_plan_ids[${index}]`, message: `'${id}' appears more than once` });
      seen.add(id);
    });
    const currencies = await ratePlans.latestCurrencies(trx, scope, offering.ratePlanIds);
    offering.ratePlanIds.forEach((id, index) => {
      if (!currencies.has(id)) {
        issues.push({
          field: `rate_plan_ids[${index}]`,
          message: `no rate plan '${id}' exists in this tenant and mode`,
        });
      }
    });
    if (issues.length > 0) throw unprocessable("The offering names rate plans it cannot use.", issues);
    const escrow = asked.escrow ?? defaultEscrow(offering.billingMode);
    const currency = asked.currency === null ? null : upperCurrency(asked.currency);
    if (currency !== null) requireKnownCurrency(currency);
    const checked = checkOfferingRules({
      billingMode: offering.billingMode,
      escrow,
      initialCredits: asked.initialCredits,
      currency,
      ratePlanCurrencies: offering.ratePlanIds.map((id) => currencies.get(id) ?? ""),
    });
    if (!checked.ok) throw unprocessable("The offering breaks pricing rules.", checked.issues);
    return {
      ...offering,
      currency: checked.currency,
      escrow: escrow && {
        low_balance_threshold: formatDecimal(escrow.low_balance_threshold),
        on_empty: escrow.on_empty,
      },
      initialCredits: asked.initialCredits === null ? null : formatDecimal(asked.initialCredits),
    };
  }

  async getOffering(scope: TenantScope, id: string): Promise<Offering> {
    const offering = await offerings.findOffering(this.#db, scope, id);
    if (!offering) throw notFound("offering", id);
    return offering;
  }

  async listOfferings(
    scope: TenantScope,
    page: PageRequest,
    status?: OfferingStatus,
  ): Promise<Page<Offering>> {
    return offerings.listOfferings(this.#db, scope, page, status);
  }

  /**
   * Changes an offering. Archived offerings are frozen; status moves DRAFT → PUBLISHED → ARCHIVED;
   * while customers are subscribed, rate plans cannot be removed and the currency and billing mode
   * cannot change (409 resource-in-use).
   */
  async updateOffering(scope: TenantScope, id: string, input: UpdateOfferingInput): Promise<Offering> {
    return this.#db.transaction().execute(async (trx) => {
      const before = await offerings.findOffering(trx, scope, id, { forUpdate: true });
      if (!before) throw notFound("offering", id);
      if (before.status === "ARCHIVED") {
        const onlyArchives = Object.entries(input).every(
          ([key, value]) => value === undefined || (key === "status" && value === "ARCHIVED"),
        );
        if (!onlyArchives) {
          throw new AforoError(
            "invalid-transition",
            `Offering '${id}' is archived and can no longer change.`,
          );
        }
        return before;
      }
      const status = input.status ?? before.status;
      if (!canTransition(before.status, status)) {
        throw new AforoError(
          "invalid-transition",
          `Offering '${id}' cannot move from ${before.status} to ${status}.`,
        );
      }
      const billingMode = input.billing_mode ?? before.billingMode;
      const escrowChanged = input.escrow !== undefined || billingMode !== before.billingMode;
      const draft: Offering = {
        ...before,
        name: input.name ?? before.name,
        description: input.description === undefined ? before.description : input.description,
        ratePlanIds: input.rate_plan_ids ?? before.ratePlanIds,
        billingMode,
        trialDays: input.trial_days ?? before.trialDays,
        status,
        updatedAt: this.#clock.now(),
      };
      const after = await this.#settle(trx, scope, draft, {
        escrow: escrowChanged ? (input.escrow ?? null) : before.escrow,
        initialCredits: input.initial_credits === undefined ? before.initialCredits : input.initial_credits,
        currency: input.currency === undefined ? before.currency : input.currency,
      });
      const guarded = guardedChanges(before, after);
      if (guarded.length > 0 && (await this.hasSubscriptions(scope, id, trx))) {
        throw new AforoError(
          "resource-in-use",
          `Offering '${id}' has subscribers; this change would alter what they pay.`,
          {
            errors: guarded,
          },
        );
      }
      await offerings.updateOffering(trx, scope, after);
      return after;
    });
  }

  async setOfferingStatus(scope: TenantScope, id: string, status: OfferingStatus): Promise<Offering> {
    return this.updateOffering(scope, id, { status });
  }

  // ---- Promotions ---------------------------------------------------------------------------

  async createPromotion(scope: TenantScope, raw: PromotionInput): Promise<Promotion> {
    const input = {
      ...raw,
      ...(raw.currency === undefined ? {} : { currency: upperCurrency(raw.currency) }),
    };
    if (input.currency !== undefined) requireKnownCurrency(input.currency);
    const now = this.#clock.now();
    const issues = checkPromotionRules(input, now);
    if (issues.length > 0) throw unprocessable("The promotion breaks pricing rules.", issues);
    return this.#db.transaction().execute(async (trx) => {
      const offeringIds = [...new Set(input.offering_ids ?? [])];
      const existing = await offerings.existingOfferingIds(trx, scope, offeringIds);
      const unknown = (input.offering_ids ?? []).flatMap((id, index) =>
        existing.has(id)
          ? []
          : [
              {
                field: `offering_ids[${index}]`,
                message: `no offering '${id}' exists in this tenant and mode`,
              },
            ],
      );
      if (unknown.length > 0) throw unprocessable("The promotion names unknown offerings.", unknown);
      if (await promotions.findPromotionByCode(trx, scope, input.code)) throw codeTaken(input.code);
      const promotion: Promotion = {
        id: newId("promotion"),
        tenantId: scope.tenantId,
        mode: scope.mode,
        code: input.code.trim(),
        percentOff: input.percent_off === undefined ? null : formatDecimal(input.percent_off),
        amountOff: input.amount_off === undefined ? null : formatDecimal(input.amount_off),
        currency: input.amount_off === undefined ? null : (input.currency ?? null),
        duration: input.duration,
        durationInPeriods: input.duration_in_periods ?? null,
        expiresAt: input.expires_at === undefined ? null : new Date(input.expires_at),
        maxRedemptions: input.max_redemptions ?? null,
        offeringIds,
        status: "ACTIVE",
        createdAt: now,
        archivedAt: null,
      };
      try {
        await promotions.insertPromotion(trx, promotion);
      } catch (error) {
        if (isUniqueViolation(error)) throw codeTaken(input.code);
        throw error;
      }
      return promotion;
    });
  }

  async getPromotion(scope: TenantScope, id: string): Promise<Promotion> {
    const promotion = await promotions.findPromotion(this.#db, scope, id);
    if (!promotion) throw notFound("promotion", id);
    return promotion;
  }

  /** A promotion by its code, any case; subscriptions use it to apply `promotion_code`. */
  async findPromotionByCode(
    scope: TenantScope,
    code: string,
    db: Kysely<Database> = this.#db,
  ): Promise<Promotion | undefined> {
    return promotions.findPromotionByCode(db, scope, code);
  }

  async listPromotions(scope: TenantScope, page: PageRequest): Promise<Page<Promotion>> {
    return promotions.listPromotions(this.#db, scope, page);
  }

  /** Archiving is final and idempotent; the code stays reserved so past redemptions stay unambiguous. */
  async archivePromotion(scope: TenantScope, id: string): Promise<Promotion> {
    const archived = await promotions.archivePromotion(this.#db, scope, id, this.#clock.now());
    return archived ?? this.getPromotion(scope, id);
  }

  /** How many times a promotion was redeemed. Nothing redeems yet: subscriptions will (later issue). */
  async timesRedeemed(_scope: TenantScope, _promotionId: string): Promise<number> {
    return 0;
  }
}

function notFound(kind: string, id: string): AforoError {
  return new AforoError("not-found", `No ${kind} with id '${id}' exists in this tenant and mode.`);
}

function notFoundRatePlan(id: string): AforoError {
  return notFound("rate plan", id);
}

function codeTaken(code: string): AforoError {
  return new AforoError(
    "conflict",
    `A promotion with code '${normalizeCode(code)}' already exists (codes ignore case).`,
  );
}
