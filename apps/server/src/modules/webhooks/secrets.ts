import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from "node:crypto";
import type { Kysely } from "kysely";
import type { Database } from "../../db/schema.ts";

const VERSION = "v1";
const FALLBACK_KEY_STATE = "secrets.fallback_key";

interface Key {
  id: string;
  bytes: Buffer;
}

function keyOf(bytes: Buffer): Key {
  return { id: createHash("sha256").update(bytes).digest("hex").slice(0, 8), bytes };
}

/** AFORO_SECRETS_KEY (any string of 32+ characters) stretched to an AES-256 key. */
export function keyFromConfig(secret: string): Key {
  return keyOf(Buffer.from(hkdfSync("sha256", secret, "aforo", "aforo secrets v1", 32)));
}

/** AES-256-GCM: `v1.<key id>.<iv>.<tag>.<ciphertext>` (base64url); the key id names the key. */
export function seal(key: Key, plaintext: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key.bytes, iv);
  const ciphertext = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
  const tag = cipher.getAuthTag();
  return [VERSION, key.id, iv, tag, ciphertext]
    .map((part) => (typeof part === "string" ? part : part.toString("base64url")))
    .join(".");
}

export function open(keys: readonly Key[], sealed: string): string {
  const [version, keyId, iv, tag, ciphertext] = sealed.split(".");
  if (version !== VERSION || !keyId || !iv || !tag || ciphertext === undefined) {
    throw new Error("not a sealed secret");
  }
  const key = keys.find((candidate) => candidate.id === keyId);
  if (!key) {
    throw new Error(
      `the secret was sealed with key ${keyId}, which this process does not have (was AFORO_SECRETS_KEY changed?)`,
    );
  }
  const decipher = createDecipheriv("aes-256-gcm", key.bytes, Buffer.from(iv, "base64url"));
  decipher.setAuthTag(Buffer.from(tag, "base64url"));
  return Buffer.concat([decipher.update(Buffer.from(ciphertext, "base64url")), decipher.final()]).toString(
    "utf8",
  );
}

/**
 * Seals secrets Aforo must read back (webhook signing secrets). With AFORO_SECRETS_KEY set, new
 * secrets are sealed with it; without it, with a key generated once and kept in the database
 * (`system_state`), which only keeps secrets out of casual reads and dumps of single tables. Both
 * keys can open: secrets sealed before the variable was set still open after.
 *
 * Call outside transactions: loading the stored key takes a connection of its own.
 */
export class SecretBox {
  readonly #db: Kysely<Database>;
  readonly #configured: Key | undefined;
  #fallback: Promise<Key> | undefined;

  constructor(db: Kysely<Database>, configuredSecret: string | undefined) {
    this.#db = db;
    this.#configured = configuredSecret ? keyFromConfig(configuredSecret) : undefined;
  }

  async seal(plaintext: string): Promise<string> {
    return seal(this.#configured ?? (await this.#fallbackKey()), plaintext);
  }

  async open(sealed: string): Promise<string> {
    const keys = this.#configured ? [this.#configured] : [];
    if (!this.#configured || !sealed.startsWith(`${VERSION}.${this.#configured.id}.`)) {
      keys.push(await this.#fallbackKey());
    }
    return open(keys, sealed);
  }

  #fallbackKey(): Promise<Key> {
    this.#fallback ??= this.#loadFallbackKey().catch((error: unknown) => {
      this.#fallback = undefined;
      throw error;
    });
    return this.#fallback;
  }

  async #loadFallbackKey(): Promise<Key> {
    // Several processes may start at once: the first insert wins and everyone reads it back.
    await this.#db
      .insertInto("system_state")
      .values({
        key: FALLBACK_KEY_STATE,
        value: JSON.stringify({ key: randomBytes(32).toString("base64") }),
      })
      .onConflict((conflict) => conflict.column("key").doNothing())
      .execute();
    const row = await this.#db
      .selectFrom("system_state")
      .select("value")
      .where("key", "=", FALLBACK_KEY_STATE)
      .executeTakeFirstOrThrow();
    const stored = row.value.key;
    if (typeof stored !== "string") throw new Error(`system_state '${FALLBACK_KEY_STATE}' is malformed`);
    return keyOf(Buffer.from(stored, "base64"));
  }
}
