import type { TenantScope } from "../http/route-config.ts";

interface Scoped {
  id: string;
  tenantId: string;
  mode: "live" | "test";
}

/**
 * Tenant-scoped records in memory, found by any of their references (id, key, external id), so
 * that the hot paths resolve them without a query. A record's old references are dropped when it
 * is replaced (a changed external id stops resolving).
 */
export class ScopedDirectory<T extends Scoped> {
  readonly #byRef = new Map<string, T>();
  readonly #refsById = new Map<string, string[]>();
  readonly #refsOf: (item: T) => (string | null | undefined)[];

  constructor(refsOf: (item: T) => (string | null | undefined)[]) {
    this.#refsOf = refsOf;
  }

  put(item: T): void {
    this.remove(item.id);
    const refs = this.#refsOf(item).filter((ref): ref is string => typeof ref === "string" && ref.length > 0);
    for (const ref of refs) this.#byRef.set(composite(item.tenantId, item.mode, ref), item);
    this.#refsById.set(
      item.id,
      refs.map((ref) => composite(item.tenantId, item.mode, ref)),
    );
  }

  remove(id: string): void {
    for (const key of this.#refsById.get(id) ?? []) this.#byRef.delete(key);
    this.#refsById.delete(id);
  }

  resolve(scope: TenantScope, ref: string): T | undefined {
    return this.#byRef.get(composite(scope.tenantId, scope.mode, ref));
  }

  get size(): number {
    return this.#refsById.size;
  }
}

function composite(tenantId: string, mode: string, ref: string): string {
  return `${tenantId}\u0000${mode}\u0000${ref}`;
}
