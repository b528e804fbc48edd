import { AforoError } from "@aforo/core";
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import {
  afterAttempt,
  checkEndpointUrl,
  checkEventFilter,
  excerpt,
  payloadOf,
  reachedThresholds,
  subscribes,
} from "./domain.ts";
import { keyFromConfig, open, seal } from "./secrets.ts";
import { signatureHeaders } from "./sender.ts";

const NOW = new Date("2026-11-28T10:00:00Z");
const SCHEDULE = [5_000, 300_000];
const fresh = { status: "pending" as const, attemptCount: 0, automaticAttemptCount: 0, nextAttemptAt: NOW };
const answered = (statusCode: number) => ({ statusCode, responseBody: null, durationMs: 3, error: null });
const unanswered = {
  statusCode: null,
  responseBody: null,
  durationMs: 10,
  error: "no answer within 10000 ms",
};

function problemOf(action: () => unknown): AforoError {
  try {
    action();
  } catch (error) {
    if (error instanceof AforoError) return error;
    throw error;
  }
  throw new Error("expected a problem");
}

describe("endpoint rules", () => {
  it("accepts absolute http and https URLs only, without credentials", () => {
    expect(checkEndpointUrl("https://hooks.example.com/aforo?x=1")).toBe(
      "https://hooks.example.com/aforo?x=1",
    );
    expect(checkEndpointUrl("http://127.0.0.1:8080/in")).toBe("http://127.0.0.1:8080/in");
    for (const bad of ["/relative", "hooks.example.com", "ftp://example.com", "javascript:alert(1)"]) {
      const problem = problemOf(() => checkEndpointUrl(bad));
      expect(problem.slug).toBe("unprocessable-entity");
      expect(problem.errors).toEqual([{ field: "url", message: expect.any(String) }]);
    }
    expect(problemOf(() => checkEndpointUrl("https://u:p@example.com/")).errors?.[0]?.field).toBe("url");
    expect(problemOf(() => checkEndpointUrl(`https://example.com/${"a".repeat(2100)}`)).status).toBe(422);
  });

  it("accepts known event types and '*', deduplicated; '*' absorbs the rest", () => {
    expect(checkEventFilter(["invoice.paid", "invoice.paid", "api_key.created"])).toEqual([
      "invoice.paid",
      "api_key.created",
    ]);
    expect(checkEventFilter(["invoice.paid", "*"])).toEqual(["*"]);
    const unknown = problemOf(() => checkEventFilter(["invoice.paid", "invoice.exploded", "nope"]));
    expect(unknown.errors?.map((error) => error.message)).toEqual([
      "'invoice.exploded' is not a known event type",
      "'nope' is not a known event type",
    ]);
    expect(problemOf(() => checkEventFilter([])).errors?.[0]?.field).toBe("events");
  });

  it("sends an event to enabled endpoints subscribed to its type or to '*'", () => {
    expect(subscribes({ enabled: true, events: ["invoice.paid"] }, "invoice.paid")).toBe(true);
    expect(subscribes({ enabled: true, events: ["*"] }, "wallet.low_balance")).toBe(true);
    expect(subscribes({ enabled: true, events: ["invoice.paid"] }, "invoice.voided")).toBe(false);
    expect(subscribes({ enabled: false, events: ["*"] }, "invoice.paid")).toBe(false);
  });
});

describe("retries", () => {
  it("waits the schedule's n-th delay after the n-th failed attempt, then fails", () => {
    const first = afterAttempt(fresh, answered(500), "automatic", SCHEDULE, NOW);
    expect(first).toMatchObject({
      status: "pending",
      attemptCount: 1,
      automaticAttemptCount: 1,
      nextAttemptAt: new Date(NOW.getTime() + 5_000),
      lastStatusCode: 500,
      lastError: "the endpoint answered 500",
    });
    const second = afterAttempt({ ...first, status: "pending" }, unanswered, "automatic", SCHEDULE, NOW);
    expect(second).toMatchObject({
      status: "pending",
      nextAttemptAt: new Date(NOW.getTime() + 300_000),
      lastStatusCode: null,
      lastError: "no answer within 10000 ms",
    });
    const third = afterAttempt({ ...second, status: "pending" }, answered(503), "automatic", SCHEDULE, NOW);
    expect(third).toMatchObject({ status: "failed", attemptCount: 3, nextAttemptAt: null });
  });

  it("treats any 2xx as success and anything else (3xx included) as failure", () => {
    for (const code of [200, 201, 204, 299])
      expect(afterAttempt(fresh, answered(code), "automatic", SCHEDULE, NOW).status).toBe("succeeded");
    for (const code of [199, 301, 302, 400, 410, 429, 500])
      expect(afterAttempt(fresh, answered(code), "automatic", SCHEDULE, NOW).status).toBe("pending");
    expect(afterAttempt(fresh, answered(500), "automatic", [], NOW).status).toBe("failed");
  });

  it("lets a replay succeed a delivery without using up the schedule", () => {
    const pending = afterAttempt(fresh, answered(500), "automatic", SCHEDULE, NOW);
    const replayFailed = afterAttempt(
      { ...pending, status: "pending" },
      answered(500),
      "replay",
      SCHEDULE,
      NOW,
    );
    expect(replayFailed).toMatchObject({
      status: "pending",
      attemptCount: 2,
      automaticAttemptCount: 1,
      nextAttemptAt: pending.nextAttemptAt,
    });
    const failed = { ...fresh, status: "failed" as const, attemptCount: 3, automaticAttemptCount: 3 };
    expect(afterAttempt(failed, answered(200), "replay", SCHEDULE, NOW)).toMatchObject({
      status: "succeeded",
      attemptCount: 4,
      automaticAttemptCount: 3,
      nextAttemptAt: null,
    });
    const succeeded = { ...fresh, status: "succeeded" as const };
    expect(afterAttempt(succeeded, answered(500), "replay", SCHEDULE, NOW).status).toBe("failed");
  });
});

describe("messages", () => {
  it("writes the Standard Webhooks body, with bigints as exact numbers or strings", () => {
    const body = payloadOf("invoice.paid", NOW, { total: 1234n, huge: 2n ** 64n, nested: { ok: true } });
    expect(JSON.parse(body)).toEqual({
      type: "invoice.paid",
      timestamp: "2026-11-28T10:00:00.000Z",
      data: { total: 1234, huge: "18446744073709551616", nested: { ok: true } },
    });
  });

  it("signs so that the reference library verifies, with one signature per valid secret", () => {
    const secrets = [
      `whsec_${Buffer.alloc(32, 1).toString("base64")}`,
      `whsec_${Buffer.alloc(32, 2).toString("base64")}`,
    ];
    const payload = payloadOf("api_key.created", NOW, { id: "key_1" });
    const sentAt = new Date();
    const headers = signatureHeaders({ messageId: "msg_1", payload, secrets, sentAt });
    expect(headers["webhook-id"]).toBe("msg_1");
    expect(headers["webhook-timestamp"]).toBe(String(Math.floor(sentAt.getTime() / 1000)));
    expect(headers["webhook-signature"]?.split(" ")).toHaveLength(2);
    for (const secret of secrets)
      expect(new Webhook(secret).verify(payload, headers)).toMatchObject({ type: "api_key.created" });
    expect(() => new Webhook(secrets[0] ?? "").verify(payload.replace("key_1", "key_2"), headers)).toThrow();
  });

  it("keeps the first 1,000 characters of a response", () => {
    expect(excerpt("short")).toBe("short");
    expect(excerpt("x".repeat(5_000))).toHaveLength(1_001);
  });

  it("finds the usage thresholds reached, none for a zero limit", () => {
    expect(reachedThresholds(7, 10)).toEqual([]);
    expect(reachedThresholds(8, 10)).toEqual([80]);
    expect(reachedThresholds(10, 10)).toEqual([80, 100]);
    expect(reachedThresholds(0.8, 1)).toEqual([80]);
    expect(reachedThresholds(5, 0)).toEqual([]);
  });
});

describe("sealed secrets", () => {
  it("opens what it sealed, and refuses a tampered value or an unknown key", () => {
    const key = keyFromConfig("a secrets key of at least thirty-two characters");
    const sealed = seal(key, "whsec_top-secret");
    expect(sealed).toMatch(/^v1\.[0-9a-f]{8}\./);
    expect(sealed).not.toContain("top-secret");
    expect(seal(key, "whsec_top-secret")).not.toBe(sealed);
    expect(open([key], sealed)).toBe("whsec_top-secret");
    const parts = sealed.split(".");
    const ciphertext = Buffer.from(parts[4] ?? "", "base64url");
    ciphertext[0] = (ciphertext[0] ?? 0) ^ 1;
    parts[4] = ciphertext.toString("base64url");
    expect(() => open([key], parts.join("."))).toThrow();
    const other = keyFromConfig("another secrets key of at least thirty-two chars");
    expect(() => open([other], sealed)).toThrow(/AFORO_SECRETS_KEY/);
    expect(keyFromConfig("a secrets key of at least thirty-two characters").id).toBe(key.id);
  });
});
