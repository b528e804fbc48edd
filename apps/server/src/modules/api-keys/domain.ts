import * as crypto from "node:crypto";
import { createHash, randomInt } from "node:crypto";
import type { ApiKeyKind, Mode } from "../../db/schema.ts";

/** Keys are a readable prefix plus 40 random base62 characters (about 238 bits). */
const SECRET_LENGTH = 40;
const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** How long a rotated key keeps working, so clients can roll over without downtime. */
export const ROTATION_OVERLAP_MS = 5 * 60 * 1000;

export type KeyPrefix = "afo_" | "sk_live_" | "sk_test_" | "ak_live_" | "ak_test_";

export function keyPrefixFor(kind: ApiKeyKind, mode: Mode | null): KeyPrefix {
  if (kind === "operator") return "afo_";
  const family = kind === "secret" ? "sk" : "ak";
  return `${family}_${mode === "live" ? "live" : "test"}_` as KeyPrefix;
}

export function generateKey(prefix: KeyPrefix): string {
  let secret = "";
  for (let i = 0; i < SECRET_LENGTH; i++) secret += ALPHABET[randomInt(ALPHABET.length)];
  return prefix + secret;
}

// Node's one-shot digest (22+) is about twice as fast as a Hash object; every request hashes its key.
const oneShot = (crypto as { hash?: (algorithm: string, data: string, encoding: "hex") => string }).hash;

export function hashKey(key: string): string {
  return oneShot ? oneShot("sha256", key, "hex") : createHash("sha256").update(key).digest("hex");
}

/**
 * Compares two hex hashes in constant time: every character is looked at whatever differs (no
 * early exit), without the two buffers timingSafeEqual would need on every request.
 */
export function hashesEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return difference === 0;
}

export interface ParsedKey {
  kind: ApiKeyKind;
  mode: Mode | null;
}

/** Recognises a key by its prefix; anything else is not an Aforo key. */
export function parseKey(key: string): ParsedKey | undefined {
  if (!/^[a-z_]+[A-Za-z0-9]{32,}$/.test(key)) return undefined;
  if (key.startsWith("afo_")) return { kind: "operator", mode: null };
  const match = /^(sk|ak)_(live|test)_/.exec(key);
  if (!match) return undefined;
  return { kind: match[1] === "sk" ? "secret" : "consumer", mode: match[2] as Mode };
}

/**
 * Scopes are `<area>:read` or `<area>:write` (write implies read), or `*` for everything.
 * Routes declare the scope they need.
 */
export const scopeAreas = [
  "catalog",
  "pricing",
  "customers",
  "metering",
  "entitlements",
  "billing",
  "wallets",
  "keys",
  "webhooks",
  "analytics",
] as const;
export type ScopeArea = (typeof scopeAreas)[number];
export type Scope = `${ScopeArea}:${"read" | "write"}` | "*";

export const allScopes: readonly string[] = [
  "*",
  ...scopeAreas.flatMap((area) => [`${area}:read`, `${area}:write`]),
];

export function isKnownScope(value: string): value is Scope {
  return allScopes.includes(value);
}

export function grants(scopes: readonly string[], needed: Scope): boolean {
  if (scopes.includes("*") || scopes.includes(needed)) return true;
  if (needed.endsWith(":read")) return scopes.includes(needed.replace(/:read$/, ":write"));
  return false;
}
