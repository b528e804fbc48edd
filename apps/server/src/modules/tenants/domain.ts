import { hasIdPrefix } from "@aforo/core";

export interface RateLimitOverride {
  limit: number;
  burst: number;
}

export interface Tenant {
  id: string;
  slug: string;
  name: string;
  /** Per-class overrides of the contract's default rate limits, for every key of the tenant. */
  rateLimits: Record<string, RateLimitOverride> | undefined;
  createdAt: Date;
}

const SLUG_PATTERN = /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/;

export function isValidSlug(slug: string): boolean {
  return SLUG_PATTERN.test(slug) && !hasIdPrefix("tenant", slug);
}

/** "Acme Corp." → "acme-corp"; padded so that very short names still make a valid slug. */
export function slugFromName(name: string): string {
  const base = name
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 48)
    .replace(/-+$/g, "");
  return base.length >= 3 ? base : `tenant-${base || "x"}`.replace(/-+$/, "");
}
