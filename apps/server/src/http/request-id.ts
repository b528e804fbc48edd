import type { IncomingMessage } from "node:http";
import { newId } from "@aforo/core";

const ACCEPTABLE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Keeps a caller's `X-Request-Id` (a gateway's trace id) when it is sane, or makes one. */
export function requestIdFor(request: IncomingMessage): string {
  const incoming = request.headers["x-request-id"];
  if (typeof incoming === "string" && ACCEPTABLE_REQUEST_ID.test(incoming)) return incoming;
  return newId("request");
}
