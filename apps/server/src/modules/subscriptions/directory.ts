import type { TenantScope } from "../../http/route-config.ts";
import { isTerminal } from "./domain/lifecycle.ts";
import type { Subscription } from "./domain/subscription.ts";

/** Tenant ids and customer ids never contain NUL, so the joined key cannot collide. */
function customerKey(tenantId: string, mode: string, customerId: string): string {
  return `${tenantId}\u0000${mode}\u0000${customerId}`;
}

function byCreation(a: Subscription, b: Subscription): number {
  return a.createdAt.getTime() - b.createdAt.getTime() || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/**
 * Subscriptions that have not ended (and those that ended recently) of every tenant, in memory, so
 * the edge decides from memory which plan a customer is on.
 *
 * Writes arrive from this process (after commit) and from others (NOTIFY, then a reload by id) in
 * any order: `put` keeps the highest `version`, so a late, stale reload never overwrites a newer one.
 */
export class SubscriptionDirectory {
  readonly #byId = new Map<string, Subscription>();
  readonly #byCustomer = new Map<string, Set<string>>();

  get size(): number {
    return this.#byId.size;
  }

  get(scope: TenantScope, id: string): Subscription | undefined {
    const found = this.#byId.get(id);
    return found && found.tenantId === scope.tenantId && found.mode === scope.mode ? found : undefined;
  }

  /** Oldest first. */
  forCustomer(scope: TenantScope, customerId: string): Subscription[] {
    const ids = this.#byCustomer.get(customerKey(scope.tenantId, scope.mode, customerId));
    if (!ids) return [];
    const found: Subscription[] = [];
    for (const id of ids) {
      const subscription = this.#byId.get(id);
      if (subscription) found.push(subscription);
    }
    return found.sort(byCreation);
  }

  /** Stores the subscription unless this or a newer version is held. Returns whether it was stored. */
  put(subscription: Subscription): boolean {
    const existing = this.#byId.get(subscription.id);
    if (existing && existing.version >= subscription.version) return false;
    if (existing) this.#unindex(existing);
    this.#byId.set(subscription.id, subscription);
    const key = customerKey(subscription.tenantId, subscription.mode, subscription.customerId);
    let ids = this.#byCustomer.get(key);
    if (!ids) {
      ids = new Set();
      this.#byCustomer.set(key, ids);
    }
    ids.add(subscription.id);
    return true;
  }

  /** Forgets subscriptions that ended before `endedBefore`. Returns how many. */
  prune(endedBefore: Date): number {
    let removed = 0;
    for (const subscription of this.#byId.values()) {
      const { endedAt } = subscription;
      if (isTerminal(subscription.status) && endedAt && endedAt.getTime() < endedBefore.getTime()) {
        this.#unindex(subscription);
        this.#byId.delete(subscription.id);
        removed += 1;
      }
    }
    return removed;
  }

  clear(): void {
    this.#byId.clear();
    this.#byCustomer.clear();
  }

  #unindex(subscription: Subscription): void {
    const key = customerKey(subscription.tenantId, subscription.mode, subscription.customerId);
    const ids = this.#byCustomer.get(key);
    ids?.delete(subscription.id);
    if (ids?.size === 0) this.#byCustomer.delete(key);
  }
}
