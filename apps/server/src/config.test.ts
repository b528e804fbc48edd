import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "./config.ts";

describe("configuration", () => {
  it("defaults to port 4000 and the embedded database in ./.aforo/data", () => {
    const config = loadConfig({});
    expect(config.port).toBe(4000);
    expect(config.databaseUrl).toBeUndefined();
    expect(config.dataDir).toMatch(/\.aforo\/data$/);
    expect(config.publicUrl).toBe("http://localhost:4000");
  });

  it("reads every variable it documents", () => {
    const config = loadConfig({
      PORT: "8080",
      DATABASE_URL: "postgres://u@db:5432/aforo",
      REDIS_URL: "redis://cache:6379",
      NATS_URL: "nats://bus:4222",
      AFORO_DATA_DIR: "/var/lib/aforo",
      AFORO_OPERATOR_KEY: `afo_${"a".repeat(40)}`,
      LOG_LEVEL: "debug",
    });
    expect(config).toMatchObject({
      port: 8080,
      databaseUrl: "postgres://u@db:5432/aforo",
      redisUrl: "redis://cache:6379",
      natsUrl: "nats://bus:4222",
      dataDir: "/var/lib/aforo",
      logLevel: "debug",
    });
  });

  it.each([
    ["PORT", "abc"],
    ["PORT", "70000"],
    ["DATABASE_URL", "mysql://x"],
    ["DATABASE_URL", "not a url"],
    ["REDIS_URL", "http://x"],
    ["NATS_URL", "redis://x"],
    ["AFORO_OPERATOR_KEY", "sk_live_nope"],
    ["LOG_LEVEL", "loud"],
  ])("refuses %s=%s with a message naming the variable", (variable, value) => {
    let caught: unknown;
    try {
      loadConfig({ [variable]: value });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).variable).toBe(variable);
    expect((caught as ConfigError).message).toContain(variable);
    expect((caught as ConfigError).message).not.toContain("\n");
  });
});
