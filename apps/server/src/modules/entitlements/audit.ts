import { newId } from "@aforo/core";
import type { Insertable } from "kysely";
import type { Clock } from "../../clock.ts";
import type { DatabaseHandle } from "../../db/database.ts";
import type { TenantScope } from "../../http/route-config.ts";
import type { Decision } from "./domain/decision.ts";
import type { EntitlementDecisionsTable } from "./tables.ts";

export interface AuditSettings {
  /** Share of all decisions kept, 0 to 1. */
  sampleRate: number;
  /** Customers whose every decision is kept. */
  customerIds: Set<string>;
}

const MAX_BUFFERED = 10_000;
const FLUSH_EVERY_MS = 1_000;

/**
 * The audit trail of decisions, kept off the hot path: a decision is pushed to a bounded buffer in
 * memory and written in batches every second. When the buffer is full, decisions are dropped and
 * counted rather than slowing the edge down.
 */
export class DecisionAudit {
  readonly #database: DatabaseHandle;
  readonly #clock: Clock;
  readonly #settings = new Map<string, AuditSettings>();
  #buffer: Insertable<EntitlementDecisionsTable>[] = [];
  #flushing: Promise<void> | undefined;
  dropped = 0;

  constructor(database: DatabaseHandle, clock: Clock) {
    this.#database = database;
    this.#clock = clock;
  }

  async start(): Promise<() => Promise<void>> {
    const rows = await this.#database.db.selectFrom("entitlement_audit_settings").selectAll().execute();
    for (const row of rows) {
      this.#settings.set(scopeKey({ tenantId: row.tenant_id, mode: row.mode }), {
        sampleRate: Number(row.sample_rate),
        customerIds: new Set(row.customer_ids),
      });
    }
    const timer = setInterval(() => void this.flush(), FLUSH_EVERY_MS);
    timer.unref();
    return async () => {
      clearInterval(timer);
      await this.flush();
    };
  }

  settingsOf(scope: TenantScope): AuditSettings {
    return this.#settings.get(scopeKey(scope)) ?? { sampleRate: 0, customerIds: new Set() };
  }

  async configure(
    scope: TenantScope,
    settings: { sampleRate: number; customerIds: string[] },
  ): Promise<AuditSettings> {
    await this.#database.db
      .insertInto("entitlement_audit_settings")
      .values({
        tenant_id: scope.tenantId,
        mode: scope.mode,
        sample_rate: String(settings.sampleRate),
        customer_ids: settings.customerIds,
        updated_at: this.#clock.now(),
      })
      .onConflict((oc) =>
        oc.columns(["tenant_id", "mode"]).doUpdateSet({
          sample_rate: String(settings.sampleRate),
          customer_ids: settings.customerIds,
          updated_at: this.#clock.now(),
        }),
      )
      .execute();
    const applied = { sampleRate: settings.sampleRate, customerIds: new Set(settings.customerIds) };
    this.#settings.set(scopeKey(scope), applied);
    return applied;
  }

  record(
    scope: TenantScope,
    customerId: string,
    feature: string,
    quantity: number,
    decision: Decision,
  ): void {
    const settings = this.#settings.get(scopeKey(scope));
    if (!settings) return;
    if (
      !settings.customerIds.has(customerId) &&
      !(settings.sampleRate > 0 && Math.random() < settings.sampleRate)
    )
      return;
    if (this.#buffer.length >= MAX_BUFFERED) {
      this.dropped += 1;
      return;
    }
    this.#buffer.push({
      id: newId("decision"),
      tenant_id: scope.tenantId,
      mode: scope.mode,
      customer_id: customerId,
      feature,
      quantity: String(quantity),
      decision: decision.decision,
      reason: decision.reason,
      remaining: decision.remaining === null ? null : String(decision.remaining),
      consumed: decision.consume,
      decided_at: this.#clock.now(),
    });
  }

  /** Writes what is buffered; concurrent calls share one write. */
  flush(): Promise<void> {
    if (this.#flushing) return this.#flushing;
    if (this.#buffer.length === 0) return Promise.resolve();
    const flushing = this.#write().finally(() => {
      this.#flushing = undefined;
    });
    this.#flushing = flushing;
    return flushing;
  }

  async #write(): Promise<void> {
    try {
      while (this.#buffer.length > 0) {
        const batch = this.#buffer.splice(0, 1_000);
        await this.#database.db.insertInto("entitlement_decisions").values(batch).execute();
      }
    } catch {
      // The audit is best effort by design: a failed batch is counted as dropped, never retried
      // on the hot path.
      this.dropped += this.#buffer.length;
      this.#buffer = [];
    }
  }
}

function scopeKey(scope: TenantScope): string {
  return `${scope.tenantId}\u0000${scope.mode}`;
}
