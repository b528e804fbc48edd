import { AforoError, newId } from "@aforo/core";
import { type Kysely, sql } from "kysely";
import type { Clock } from "../../clock.ts";
import { followChanges } from "../../db/change-feed.ts";
import type { DatabaseHandle } from "../../db/database.ts";
import type { Page, PageRequest } from "../../db/pagination.ts";
import type { Database, Mode } from "../../db/schema.ts";
import { noWebhooks, type WebhookPublisher } from "../webhooks/publisher.ts";
import { generateKey, hashKey, isKnownScope, keyPrefixFor, parseKey, ROTATION_OVERLAP_MS } from "./domain.ts";
import { type ApiKeyRecord, KeyRegistry, type RateLimitOverride } from "./registry.ts";
import { toApi } from "./routes/index.ts";
import * as store from "./store.ts";

const CHANGES_CHANNEL = "aforo_api_keys";

export interface CreateKeyInput {
  tenantId: string;
  mode: Mode;
  kind: "secret" | "consumer";
  scopes?: string[] | undefined;
  name?: string | undefined;
  rateLimits?: Record<string, RateLimitOverride> | undefined;
  subscriptionId?: string | undefined;
  customerId?: string | undefined;
}

/** A key as just made: the only moment its secret exists outside the caller's hands. */
export interface IssuedKey {
  record: ApiKeyRecord;
  secret: string;
}

export class ApiKeyService {
  readonly registry = new KeyRegistry();
  readonly #database: DatabaseHandle;
  readonly #clock: Clock;
  readonly #operatorKeyHash: string | undefined;
  /** api_key.created / api_key.revoked for tenant keys (set by the context). */
  webhooks: WebhookPublisher = noWebhooks;

  constructor(database: DatabaseHandle, clock: Clock, operatorKeyFromEnv?: string) {
    this.#database = database;
    this.#clock = clock;
    this.#operatorKeyHash = operatorKeyFromEnv ? hashKey(operatorKeyFromEnv) : undefined;
  }

  get #db(): Kysely<Database> {
    return this.#database.db;
  }

  /** Loads every usable key into memory and follows changes made by other processes. */
  async start(): Promise<() => Promise<void>> {
    return followChanges(
      this.#database,
      CHANGES_CHANNEL,
      (keyHash) => void this.#refresh(keyHash),
      () => this.reload(),
    );
  }

  async reload(): Promise<void> {
    const keys = await store.listUsableKeys(this.#db, this.#clock.now());
    this.registry.replaceAll(keys);
    if (this.#operatorKeyHash) this.registry.put(this.#environmentOperatorKey(this.#operatorKeyHash));
  }

  async #refresh(keyHash: string): Promise<void> {
    const key = await store.findKeyByHash(this.#db, keyHash);
    if (key) this.registry.put(key);
    else this.registry.forget(keyHash);
  }

  /** Resolves a presented secret to its key, from memory. */
  authenticate(secret: string): ApiKeyRecord | undefined {
    if (!parseKey(secret)) return undefined;
    return this.registry.lookup(hashKey(secret), this.#clock.now());
  }

  async hasOperatorKey(): Promise<boolean> {
    return Boolean(this.#operatorKeyHash) || (await store.countOperatorKeys(this.#db)) > 0;
  }

  async createOperatorKey(name = "operator"): Promise<IssuedKey> {
    return this.#issue(this.#db, { tenantId: null, mode: null, kind: "operator", scopes: ["*"], name });
  }

  async create(input: CreateKeyInput, db: Kysely<Database> = this.#db): Promise<IssuedKey> {
    const scopes = input.scopes && input.scopes.length > 0 ? input.scopes : ["*"];
    const unknown = scopes.filter((scope) => !isKnownScope(scope));
    if (unknown.length > 0) {
      throw new AforoError("unprocessable-entity", `Unknown scope(s): ${unknown.join(", ")}.`, {
        errors: unknown.map((scope) => ({ field: "scopes", message: `'${scope}' is not a known scope` })),
      });
    }
    return this.#issue(db, {
      tenantId: input.tenantId,
      mode: input.mode,
      kind: input.kind,
      scopes,
      name: input.name ?? null,
      rateLimits: input.rateLimits,
      subscriptionId: input.subscriptionId ?? null,
      customerId: input.customerId ?? null,
    });
  }

  async list(tenantId: string, mode: Mode, page: PageRequest): Promise<Page<ApiKeyRecord>> {
    return store.listTenantKeys(this.#db, tenantId, mode, page);
  }

  async get(tenantId: string, mode: Mode, id: string): Promise<ApiKeyRecord> {
    const key = await store.findTenantKey(this.#db, tenantId, mode, id);
    if (!key) throw new AforoError("not-found", `No API key with id '${id}' exists in this tenant.`);
    return key;
  }

  /**
   * Issues a successor with the same scopes; the old key keeps working for five minutes so that
   * clients can roll over without an outage.
   */
  async rotate(tenantId: string, mode: Mode, id: string): Promise<IssuedKey> {
    const issued = await this.#db.transaction().execute(async (trx) => {
      const old = await store.findTenantKey(trx, tenantId, mode, id);
      if (!old || old.kind === "operator")
        throw new AforoError("not-found", `No API key with id '${id}' exists in this tenant.`);
      const now = this.#clock.now();
      if (old.revokedAt || (old.expiresAt && old.expiresAt <= now)) {
        throw new AforoError(
          "invalid-transition",
          `API key '${id}' is revoked or expired and cannot be rotated.`,
        );
      }
      if (old.suspendedAt) {
        throw new AforoError(
          "invalid-transition",
          `API key '${id}' is suspended (its subscription is SUSPENDED) and cannot be rotated.`,
        );
      }
      if (old.rotatedTo) {
        throw new AforoError(
          "invalid-transition",
          `API key '${id}' was already rotated to '${old.rotatedTo}'.`,
        );
      }
      const successor = await this.#issueIn(trx, {
        tenantId,
        mode,
        kind: old.kind,
        scopes: old.scopes,
        name: old.name,
        rateLimits: old.rateLimits,
        subscriptionId: old.subscriptionId,
        customerId: old.customerId,
      });
      const overlapEnds = new Date(now.getTime() + ROTATION_OVERLAP_MS);
      const expiresAt = old.expiresAt && old.expiresAt < overlapEnds ? old.expiresAt : overlapEnds;
      const retired = await store.updateKey(trx, id, {
        expires_at: expiresAt,
        rotated_to: successor.record.id,
      });
      await this.#notify(trx, retired.keyHash);
      return { successor, retired };
    });
    this.registry.put(issued.retired);
    this.registry.put(issued.successor.record);
    return issued.successor;
  }

  async revoke(tenantId: string, mode: Mode, id: string): Promise<ApiKeyRecord> {
    const revoked = await this.#db.transaction().execute(async (trx) => {
      const key = await store.findTenantKey(trx, tenantId, mode, id);
      if (!key) throw new AforoError("not-found", `No API key with id '${id}' exists in this tenant.`);
      if (key.revokedAt) return key;
      const updated = await store.updateKey(trx, id, { revoked_at: this.#clock.now() });
      await this.#notify(trx, updated.keyHash);
      await this.#announce(trx, "api_key.revoked", updated);
      return updated;
    });
    this.registry.forget(revoked.keyHash);
    return revoked;
  }

  /**
   * Suspends (or, with `suspended` false, restores) the consumer keys of a subscription: dunning
   * suspends them while the subscription is SUSPENDED. Idempotent; returns how many keys changed.
   */
  async setSubscriptionKeysSuspended(
    tenantId: string,
    mode: Mode,
    subscriptionId: string,
    suspended: boolean,
  ): Promise<number> {
    const changed = await this.#db.transaction().execute(async (trx) => {
      const keys = await store.setSubscriptionKeysSuspended(
        trx,
        tenantId,
        mode,
        subscriptionId,
        suspended ? this.#clock.now() : null,
      );
      for (const key of keys) await this.#notify(trx, key.keyHash);
      return keys;
    });
    for (const key of changed) this.registry.put(key);
    return changed.length;
  }

  async #issue(db: Kysely<Database>, spec: KeySpec): Promise<IssuedKey> {
    // The key and its api_key.created event commit together.
    const issued = db.isTransaction
      ? await this.#issueIn(db, spec)
      : await db.transaction().execute((trx) => this.#issueIn(trx, spec));
    this.registry.put(issued.record);
    return issued;
  }

  async #issueIn(db: Kysely<Database>, spec: KeySpec): Promise<IssuedKey> {
    const prefix = keyPrefixFor(spec.kind, spec.mode);
    const secret = generateKey(prefix);
    const record: ApiKeyRecord = {
      id: newId("apiKey"),
      tenantId: spec.tenantId,
      kind: spec.kind,
      mode: spec.mode,
      name: spec.name,
      prefix,
      last4: secret.slice(-4),
      keyHash: hashKey(secret),
      scopes: spec.scopes,
      rateLimits: spec.rateLimits,
      subscriptionId: spec.subscriptionId ?? null,
      customerId: spec.customerId ?? null,
      expiresAt: null,
      revokedAt: null,
      rotatedTo: null,
      createdAt: this.#clock.now(),
    };
    await store.insertKey(db, record);
    // Other processes learn of the new key on commit; without this they answer 401 until restart.
    await this.#notify(db, record.keyHash);
    await this.#announce(db, "api_key.created", record);
    return { record, secret };
  }

  /** Tenant keys only, never with the secret (the event carries the redacted key). */
  async #announce(
    db: Kysely<Database>,
    type: "api_key.created" | "api_key.revoked",
    record: ApiKeyRecord,
  ): Promise<void> {
    if (!record.tenantId || !record.mode) return;
    const scope = { tenantId: record.tenantId, mode: record.mode };
    await this.webhooks.publish(db, scope, type, toApi(record, this.#clock.now()));
  }

  async #notify(db: Kysely<Database>, keyHash: string): Promise<void> {
    if (this.#database.kind === "postgres")
      await sql`select pg_notify(${CHANGES_CHANNEL}, ${keyHash})`.execute(db);
  }

  #environmentOperatorKey(keyHash: string): ApiKeyRecord {
    return {
      id: "key_environment_operator",
      tenantId: null,
      kind: "operator",
      mode: null,
      name: "AFORO_OPERATOR_KEY",
      prefix: "afo_",
      last4: "",
      keyHash,
      scopes: ["*"],
      rateLimits: undefined,
      subscriptionId: null,
      customerId: null,
      expiresAt: null,
      revokedAt: null,
      rotatedTo: null,
      createdAt: new Date(0),
    };
  }
}

interface KeySpec {
  tenantId: string | null;
  mode: Mode | null;
  kind: ApiKeyRecord["kind"];
  scopes: string[];
  name: string | null;
  rateLimits?: Record<string, RateLimitOverride> | undefined;
  subscriptionId?: string | null;
  customerId?: string | null;
}
