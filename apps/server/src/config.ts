import path from "node:path";

/** Everything the server reads from its environment, validated once at start. */
export interface Config {
  port: number;
  host: string;
  /** Public base URL, used in problem `type` URIs and printed links. */
  publicUrl: string;
  /** PostgreSQL connection string; when absent the embedded database (PGlite) is used. */
  databaseUrl: string | undefined;
  redisUrl: string | undefined;
  natsUrl: string | undefined;
  /** Folder for the embedded database and other local state. */
  dataDir: string;
  /** A fixed operator key; when absent one is generated at first start and printed once. */
  operatorKey: string | undefined;
  logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
  /**
   * Encrypts secrets Aforo must read back (webhook signing secrets). When absent, a key generated
   * once and kept in the database is used: that hides secrets from casual reads only.
   */
  secretsKey: string | undefined;
  /** Waits between webhook delivery attempts; after the last one the delivery is failed. */
  webhookRetryScheduleMs: number[];
  /** How long one webhook delivery attempt may take. */
  webhookTimeoutMs: number;
  /**
   * AFORO_STRIPE_API_URL: where the Stripe SDK sends requests instead of https://api.stripe.com
   * (stripe-mock, a test double). Absent in production.
   */
  stripeApiUrl: string | undefined;
}

export class ConfigError extends Error {
  readonly variable: string;
  constructor(variable: string, message: string) {
    super(`Invalid configuration: ${variable} ${message}`);
    this.name = "ConfigError";
    this.variable = variable;
  }
}

const logLevels = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

function readPort(env: NodeJS.ProcessEnv): number {
  const raw = env.PORT ?? "4000";
  if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > 65535) {
    throw new ConfigError("PORT", `must be a whole number from 1 to 65535, got '${raw}'.`);
  }
  return Number(raw);
}

function readUrl(env: NodeJS.ProcessEnv, name: string, protocols: string[]): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw === "") return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(
      name,
      `must be a URL (${protocols.join(" or ")}), got a value that does not parse.`,
    );
  }
  if (!protocols.includes(url.protocol)) {
    throw new ConfigError(name, `must use ${protocols.join(" or ")}, got '${url.protocol}'.`);
  }
  return raw;
}

function readOperatorKey(env: NodeJS.ProcessEnv): string | undefined {
  const raw = env.AFORO_OPERATOR_KEY;
  if (raw === undefined || raw === "") return undefined;
  if (!/^afo_[A-Za-z0-9]{32,}$/.test(raw)) {
    throw new ConfigError("AFORO_OPERATOR_KEY", "must be 'afo_' followed by at least 32 letters or digits.");
  }
  return raw;
}

function readLogLevel(env: NodeJS.ProcessEnv): Config["logLevel"] {
  const raw = env.LOG_LEVEL ?? "info";
  const level = logLevels.find((candidate) => candidate === raw);
  if (!level) throw new ConfigError("LOG_LEVEL", `must be one of ${logLevels.join(", ")}, got '${raw}'.`);
  return level;
}

function readSecretsKey(env: NodeJS.ProcessEnv): string | undefined {
  const raw = env.AFORO_SECRETS_KEY;
  if (raw === undefined || raw === "") return undefined;
  if (raw.length < 32) throw new ConfigError("AFORO_SECRETS_KEY", "must be at least 32 characters long.");
  return raw;
}

const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "5s,5m,30m,2h,5h,10h,10h": the waits before each retry. */
function readRetrySchedule(env: NodeJS.ProcessEnv): number[] {
  const raw = env.AFORO_WEBHOOK_RETRY_SCHEDULE ?? "5s,5m,30m,2h,5h,10h,10h";
  // "none": one attempt, no retries.
  if (raw.trim() === "none") return [];
  return raw.split(",").map((part) => {
    const match = /^\s*(\d+)(ms|s|m|h|d)\s*$/.exec(part);
    const unit = match?.[2] && DURATION_UNITS_MS[match[2]];
    if (!match || !unit) {
      throw new ConfigError(
        "AFORO_WEBHOOK_RETRY_SCHEDULE",
        `must be comma-separated durations such as '5s,5m,2h', got '${raw}'.`,
      );
    }
    return Number(match[1]) * unit;
  });
}

function readWebhookTimeout(env: NodeJS.ProcessEnv): number {
  const raw = env.AFORO_WEBHOOK_TIMEOUT_SECONDS ?? "10";
  if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > 300) {
    throw new ConfigError(
      "AFORO_WEBHOOK_TIMEOUT_SECONDS",
      `must be a whole number from 1 to 300, got '${raw}'.`,
    );
  }
  return Number(raw) * 1000;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const port = readPort(env);
  const host = env.HOST ?? "0.0.0.0";
  const publicUrl = (
    readUrl(env, "AFORO_PUBLIC_URL", ["http:", "https:"]) ?? `http://localhost:${port}`
  ).replace(/\/$/, "");
  const dataDir = path.resolve(env.AFORO_DATA_DIR || path.join(".aforo", "data"));
  return {
    port,
    host,
    publicUrl,
    databaseUrl: readUrl(env, "DATABASE_URL", ["postgres:", "postgresql:"]),
    redisUrl: readUrl(env, "REDIS_URL", ["redis:", "rediss:"]),
    natsUrl: readUrl(env, "NATS_URL", ["nats:", "tls:"]),
    dataDir,
    operatorKey: readOperatorKey(env),
    logLevel: readLogLevel(env),
    secretsKey: readSecretsKey(env),
    webhookRetryScheduleMs: readRetrySchedule(env),
    webhookTimeoutMs: readWebhookTimeout(env),
    stripeApiUrl: readUrl(env, "AFORO_STRIPE_API_URL", ["http:", "https:"]),
  };
}
