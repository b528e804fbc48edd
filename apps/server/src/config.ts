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
  };
}
