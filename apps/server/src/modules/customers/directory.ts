import type { TenantScope } from "../../http/route-config.ts";
import type { Customer } from "./domain.ts";

/** Tenant ids and external ids never contain NUL, so the joined key cannot collide. */
function externalKey(tenantId: string, mode: string, externalId: string): string {
  return `${tenantId}\u0000${mode}\u0000${externalId}`;
}

/**
 * Every customer of every tenant, in memory, so the metering hot path resolves a customer
 * reference (id or external id) without a database round trip.
 *
 * Writes arrive from this process (after commit) and from others (via NOTIFY, then a reload by
 * id), in any order: `put` keeps the highest `version` it has seen, so a late, stale reload never
 * overwrites a newer state.
 */
export class CustomerDirectory {
  readonly #byId = new Map<string, Customer>();
  readonly #byExternalId = new Map<string, Customer>();

  get size(): number {
    return this.#byId.size;
  }

  /** By id first, then by external id; only within the scope's tenant and mode. */
  resolve(scope: TenantScope, ref: string): Customer | undefined {
    const byId = this.#byId.get(ref);
    if (byId && byId.tenantId === scope.tenantId && byId.mode === scope.mode) return byId;
    return this.#byExternalId.get(externalKey(scope.tenantId, scope.mode, ref));
  }

  /** Stores the customer unless a newer version is already held. Returns whether it was stored. */
  put(customer: Customer): boolean {
    const existing = this.#byId.get(customer.id);
    if (existing && existing.version > customer.version) return false;
    if (existing?.externalId) this.#forgetExternal(existing);
    this.#byId.set(customer.id, customer);
    if (customer.externalId) {
      this.#byExternalId.set(externalKey(customer.tenantId, customer.mode, customer.externalId), customer);
    }
    return true;
  }

  clear(): void {
    this.#byId.clear();
    this.#byExternalId.clear();
  }

  #forgetExternal(customer: Customer): void {
    if (!customer.externalId) return;
    const key = externalKey(customer.tenantId, customer.mode, customer.externalId);
    // Another customer may hold it now (freed here, taken there, notifications out of order).
    if (this.#byExternalId.get(key)?.id === customer.id) this.#byExternalId.delete(key);
  }
}
