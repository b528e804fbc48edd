import { Webhook } from "standardwebhooks";
import { type AttemptOutcome, excerpt, RESPONSE_EXCERPT_LENGTH } from "./domain.ts";

export interface SignedRequest {
  url: string;
  /** The message id: the same for every attempt of an event, so receivers can deduplicate. */
  messageId: string;
  payload: string;
  /** Every secret currently valid (two during a rotation): one `v1,` signature each. */
  secrets: readonly string[];
  /** Wall-clock time: receivers compare `webhook-timestamp` with their own clock. */
  sentAt: Date;
  timeoutMs: number;
}

/** The Standard Webhooks headers for this message. */
export function signatureHeaders(request: Omit<SignedRequest, "url" | "timeoutMs">): Record<string, string> {
  const signatures = request.secrets.map((secret) =>
    new Webhook(secret).sign(request.messageId, request.sentAt, request.payload),
  );
  return {
    "webhook-id": request.messageId,
    "webhook-timestamp": String(Math.floor(request.sentAt.getTime() / 1000)),
    "webhook-signature": signatures.join(" "),
  };
}

/**
 * One POST of a signed message. Any answer is an outcome (2xx is success, the caller judges);
 * no answer (refused, DNS, TLS, timeout) is an outcome with `error`. Redirects are not followed:
 * a 3xx is a failure, as receivers are expected to answer at the registered URL.
 */
export async function send(request: SignedRequest): Promise<AttemptOutcome> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  try {
    const response = await fetch(request.url, {
      method: "POST",
      redirect: "manual",
      signal: AbortSignal.timeout(request.timeoutMs),
      headers: {
        "content-type": "application/json",
        "user-agent": "Aforo-Webhooks/1.0",
        ...signatureHeaders(request),
      },
      body: request.payload,
    });
    const body = await readExcerpt(response);
    return { statusCode: response.status, responseBody: body, durationMs: elapsed(), error: null };
  } catch (error) {
    return { statusCode: null, responseBody: null, durationMs: elapsed(), error: describe(error, request) };
  }
}

/** Reads at most a little more than the excerpt, then lets the rest go. */
async function readExcerpt(response: Response): Promise<string | null> {
  if (!response.body) return null;
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  try {
    while (text.length <= RESPONSE_EXCERPT_LENGTH) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  return text === "" ? null : excerpt(text);
}

function describe(error: unknown, request: SignedRequest): string {
  if (error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError")) {
    return `no answer within ${request.timeoutMs} ms`;
  }
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause : undefined;
  const code = (cause as { code?: unknown } | undefined)?.code;
  const message = cause?.message ?? (error instanceof Error ? error.message : String(error));
  return typeof code === "string" && !message.includes(code) ? `${code}: ${message}` : message;
}
