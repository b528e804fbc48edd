import { randomBytes } from "node:crypto";
import type { IncomingMessage } from "node:http";

const ACCEPTABLE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

// A random process prefix plus a counter: unique across processes, sortable within one, and far
// cheaper than a ULID (no randomness per request on the hot paths).
const processPrefix = `req_${Date.now().toString(36)}${randomBytes(4).toString("hex")}`;
let sequence = 0;

/** Keeps a caller's `X-Request-Id` (a gateway's trace id) when it is sane, or makes one. */
export function requestIdFor(request: IncomingMessage): string {
  const incoming = request.headers["x-request-id"];
  if (typeof incoming === "string" && ACCEPTABLE_REQUEST_ID.test(incoming)) return incoming;
  sequence = (sequence + 1) % Number.MAX_SAFE_INTEGER;
  return `${processPrefix}_${sequence.toString(36)}`;
}
