import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { generateKey, grants, hashesEqual, hashKey, keyPrefixFor, parseKey } from "./domain.ts";

describe("api key domain", () => {
  it("makes keys of a prefix plus 40 random characters", () => {
    const key = generateKey(keyPrefixFor("secret", "live"));
    expect(key).toMatch(/^sk_live_[A-Za-z0-9]{40}$/);
    expect(generateKey("sk_live_")).not.toBe(key);
  });

  it("recognises every key family by its prefix and nothing else", () => {
    expect(parseKey(generateKey("afo_"))).toEqual({ kind: "operator", mode: null });
    expect(parseKey(generateKey("sk_test_"))).toEqual({ kind: "secret", mode: "test" });
    expect(parseKey(generateKey("ak_live_"))).toEqual({ kind: "consumer", mode: "live" });
    expect(parseKey("sk_live_short")).toBeUndefined();
    expect(parseKey(`pk_live_${"a".repeat(40)}`)).toBeUndefined();
    expect(parseKey(`sk_live_${"a".repeat(39)}!`)).toBeUndefined();
  });

  it("stores a SHA-256 hash and compares hashes in constant time", () => {
    const key = generateKey("sk_test_");
    expect(hashKey(key)).toMatch(/^[0-9a-f]{64}$/);
    expect(hashesEqual(hashKey(key), hashKey(key))).toBe(true);
    expect(hashesEqual(hashKey(key), hashKey(`${key}x`))).toBe(false);
    // Hashes stored before keep matching: the same SHA-256 whichever digest API computes it.
    expect(hashKey(key)).toBe(createHash("sha256").update(key).digest("hex"));
    const other = hashKey(`${key}y`);
    expect(hashesEqual(hashKey(key), `${other.slice(0, 63)}${hashKey(key).slice(63)}`)).toBe(false);
    expect(hashesEqual(hashKey(key), hashKey(key).slice(1))).toBe(false);
  });

  it("lets write scopes imply read and * imply everything", () => {
    expect(grants(["*"], "billing:write")).toBe(true);
    expect(grants(["catalog:write"], "catalog:read")).toBe(true);
    expect(grants(["catalog:read"], "catalog:write")).toBe(false);
    expect(grants(["metering:write"], "catalog:read")).toBe(false);
  });
});
