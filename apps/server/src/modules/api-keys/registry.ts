import type { ApiKeyKind, Mode } from "../../db/schema.ts";
import { hashesEqual } from "./domain.ts";

export interface RateLimitOverride {
  limit: number;
  burst: number;
}

export interface ApiKeyRecord {
  id: string;
  tenantId: string | null;
  kind: ApiKeyKind;
  mode: Mode | null;
  name: string | null;
  prefix: string;
  last4: string;
  keyHash: string;
  scopes: string[];
  rateLimits: Record<string, RateLimitOverride> | undefined;
  subscriptionId: string | null;
  /** Consumer keys: the customer they identify. */
  customerId: string | null;
  expiresAt: Date | null;
  revokedAt: Date | null;
  rotatedTo: string | null;
  createdAt: Date;
  /** Consumer keys of a SUSPENDED subscription (dunning): refused until it is paid up. */
  suspendedAt?: Date | null;
}

export function isUsable(key: ApiKeyRecord, now: Date): boolean {
  if (key.revokedAt && key.revokedAt <= now) return false;
  if (key.expiresAt && key.expiresAt <= now) return false;
  if (key.suspendedAt) return false;
  return true;
}

/**
 * Every usable key, by hash, in memory: authenticating a request must not touch the database on
 * the hot paths. The service keeps it current on every change in this process; other processes
 * learn of changes through the database's notifications (see ApiKeyService.watch).
 */
export class KeyRegistry {
  readonly #byHash = new Map<string, ApiKeyRecord>();

  replaceAll(keys: Iterable<ApiKeyRecord>): void {
    this.#byHash.clear();
    for (const key of keys) this.#byHash.set(key.keyHash, key);
  }

  put(key: ApiKeyRecord): void {
    this.#byHash.set(key.keyHash, key);
  }

  forget(keyHash: string): void {
    this.#byHash.delete(keyHash);
  }

  /** The key whose hash matches, if it is still usable at `now`. */
  lookup(keyHash: string, now: Date): ApiKeyRecord | undefined {
    const key = this.#byHash.get(keyHash);
    // The map lookup already matched; the constant-time compare keeps the final check uniform.
    if (!key || !hashesEqual(key.keyHash, keyHash)) return undefined;
    return isUsable(key, now) ? key : undefined;
  }

  get size(): number {
    return this.#byHash.size;
  }
}
