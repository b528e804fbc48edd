import type { AforoError } from "@aforo/core";
import { problemTypeUri } from "../../../http/problem.ts";
import type { AcceptedEvent, IngestResult } from "../service.ts";

export function acceptedToApi(event: AcceptedEvent) {
  return { id: event.id, status: event.status, ...(event.flags.length > 0 ? { flags: event.flags } : {}) };
}

export function eventErrorToApi(error: AforoError, publicUrl: string) {
  return {
    type: problemTypeUri(publicUrl, error.slug),
    title: error.title,
    status: error.status,
    detail: error.detail,
    ...(error.errors ? { errors: error.errors } : {}),
  };
}

/** Per-event results of a batch, in the order sent; a rejected event does not fail the others. */
export function batchToApi(results: IngestResult[], publicUrl: string) {
  return {
    results: results.map((result, index) =>
      result.ok
        ? { index, ...acceptedToApi(result.event) }
        : { index, id: null, status: "REJECTED" as const, error: eventErrorToApi(result.error, publicUrl) },
    ),
  };
}
