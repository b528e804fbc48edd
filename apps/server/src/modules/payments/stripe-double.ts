import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * What the double does with a charge to a payment method: succeed, decline (Stripe's 402
 * card_error), need authentication, stay processing, or fail on Stripe's side (500 api_error).
 */
export type CardBehaviour =
  | "succeed"
  | "decline"
  | "insufficient_funds"
  | "authentication_required"
  | "processing"
  | "server_error";

export interface RecordedRequest {
  method: string;
  path: string;
  idempotencyKey: string | undefined;
  params: Record<string, string>;
  /** The response was a replay of an earlier request with the same idempotency key. */
  replayed: boolean;
  status: number;
}

interface StoredResponse {
  fingerprint: string;
  status: number;
  body: unknown;
}

type Intent = Record<string, unknown> & { id: string; status: string };

/**
 * A local stand-in for the Stripe endpoints payments call, speaking Stripe's wire format so the
 * official SDK parses (and raises) exactly what it would in production: form-encoded requests,
 * Bearer secret keys, Idempotency-Key replays (same key and parameters → the first response; other
 * parameters → 400 idempotency_error), and errors as `{error: {type, code, decline_code, message,
 * payment_intent}}` with Stripe's status codes. Endpoints: POST /v1/payment_intents (confirm,
 * off_session, payment_method, customer) and GET /v1/payment_intents/{id}.
 */
export class StripeDouble {
  readonly requests: RecordedRequest[] = [];
  readonly #server: Server;
  readonly #secretKeys = new Set<string>();
  readonly #behaviours = new Map<string, CardBehaviour>();
  /** payment method → the Stripe customer it is attached to. */
  readonly #attached = new Map<string, string>();
  readonly #intents = new Map<string, Intent>();
  readonly #idempotent = new Map<string, StoredResponse>();
  #url = "";

  private constructor() {
    this.#server = createServer((request, response) => {
      this.#handle(request, response).catch((error: unknown) => {
        response.writeHead(500, { "content-type": "application/json" });
        response.end(JSON.stringify({ error: { type: "api_error", message: String(error) } }));
      });
    });
  }

  static async start(): Promise<StripeDouble> {
    const double = new StripeDouble();
    await new Promise<void>((resolve) => double.#server.listen(0, "127.0.0.1", resolve));
    const { port } = double.#server.address() as AddressInfo;
    double.#url = `http://127.0.0.1:${port}`;
    return double;
  }

  get url(): string {
    return this.#url;
  }

  async close(): Promise<void> {
    // The SDK keeps connections alive; close them too, or close() waits for their timeout.
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  /** A secret key the double accepts (any other answers 401). */
  acceptKey(secretKey: string): void {
    this.#secretKeys.add(secretKey);
  }

  /** A payment method, attached to a Stripe customer, and what charging it does. */
  card(paymentMethodId: string, behaviour: CardBehaviour, customerId?: string): void {
    this.#behaviours.set(paymentMethodId, behaviour);
    if (customerId) this.#attached.set(paymentMethodId, customerId);
  }

  /** A processing PaymentIntent settles (as a bank debit eventually does). */
  settle(intentId: string, status: "succeeded" | "requires_payment_method"): void {
    const intent = this.#intents.get(intentId);
    if (!intent) throw new Error(`no PaymentIntent ${intentId}`);
    intent.status = status;
  }

  /** Charges that reached the double and were new (not idempotent replays), successful or not. */
  charges(): RecordedRequest[] {
    return this.requests.filter(
      (request) => request.method === "POST" && request.path === "/v1/payment_intents" && !request.replayed,
    );
  }

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const body = await readBody(request);
    const params = Object.fromEntries(new URLSearchParams(body));
    const path = (request.url ?? "").split("?")[0] ?? "";
    const method = request.method ?? "GET";
    const idempotencyKey = header(request, "idempotency-key");
    const record: RecordedRequest = { method, path, idempotencyKey, params, replayed: false, status: 0 };
    this.requests.push(record);
    const send = (status: number, payload: unknown, replayed = false) => {
      record.status = status;
      record.replayed = replayed;
      response.writeHead(status, {
        "content-type": "application/json",
        "request-id": `req_${randomBytes(7).toString("hex")}`,
        ...(replayed ? { "idempotent-replayed": "true" } : {}),
      });
      response.end(JSON.stringify(payload));
    };

    const authorization = header(request, "authorization") ?? "";
    const key = authorization.replace(/^Bearer /, "");
    if (!this.#secretKeys.has(key)) {
      send(401, {
        error: {
          type: "invalid_request_error",
          message: `Invalid API Key provided: ${key.slice(0, 8)}****${key.slice(-4)}`,
        },
      });
      return;
    }

    if (method === "POST" && idempotencyKey) {
      const fingerprint = `${path}?${body}`;
      const earlier = this.#idempotent.get(idempotencyKey);
      if (earlier) {
        if (earlier.fingerprint !== fingerprint) {
          send(400, {
            error: {
              type: "idempotency_error",
              message: `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${idempotencyKey}' if you meant to execute a different request.`,
            },
          });
          return;
        }
        send(earlier.status, earlier.body, true);
        return;
      }
      const [status, payload] = this.#route(method, path, params);
      // Stripe saves the result once the endpoint began executing; its own 500s are not saved.
      if (status !== 500) this.#idempotent.set(idempotencyKey, { fingerprint, status, body: payload });
      send(status, payload);
      return;
    }
    const [status, payload] = this.#route(method, path, params);
    send(status, payload);
  }

  #route(method: string, path: string, params: Record<string, string>): [number, unknown] {
    if (method === "POST" && path === "/v1/payment_intents") return this.#createIntent(params);
    const retrieve = /^\/v1\/payment_intents\/([^/]+)$/.exec(path);
    if (method === "GET" && retrieve?.[1]) {
      const intent = this.#intents.get(retrieve[1]);
      if (intent) return [200, intent];
      return [
        404,
        {
          error: {
            type: "invalid_request_error",
            code: "resource_missing",
            param: "intent",
            message: `No such payment_intent: '${retrieve[1]}'`,
          },
        },
      ];
    }
    return [
      404,
      {
        error: {
          type: "invalid_request_error",
          message: `Unrecognized request URL (${method}: ${path}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.`,
        },
      },
    ];
  }

  #createIntent(params: Record<string, string>): [number, unknown] {
    for (const name of ["amount", "currency"]) {
      if (!params[name])
        return [400, invalidRequest("parameter_missing", name, `Missing required param: ${name}.`)];
    }
    const amount = Number(params.amount);
    if (!/^[1-9][0-9]*$/.test(params.amount ?? "")) {
      return [400, invalidRequest("parameter_invalid_integer", "amount", "Invalid integer: amount")];
    }
    // Aforo only ever charges saved methods off-session, confirmed at once.
    if (params.confirm !== "true" || params.off_session !== "true") {
      return [
        400,
        invalidRequest(
          "parameter_invalid_empty",
          "confirm",
          "The double expects confirm=true and off_session=true.",
        ),
      ];
    }
    const paymentMethod = params.payment_method ?? "";
    const behaviour = this.#behaviours.get(paymentMethod);
    if (!behaviour) {
      return [
        400,
        invalidRequest("resource_missing", "payment_method", `No such PaymentMethod: '${paymentMethod}'`),
      ];
    }
    const owner = this.#attached.get(paymentMethod);
    if (owner && params.customer !== owner) {
      return [
        400,
        invalidRequest(
          "payment_method_invalid_parameter",
          "payment_method",
          `The provided PaymentMethod ${paymentMethod} was previously used without being attached to a Customer or was detached from a Customer, and may not be used again.`,
        ),
      ];
    }
    if (behaviour === "server_error") {
      return [500, { error: { type: "api_error", message: "An unknown error occurred" } }];
    }
    const intent: Intent = {
      id: `pi_${randomBytes(12).toString("hex")}`,
      object: "payment_intent",
      amount,
      amount_received: 0,
      currency: params.currency,
      customer: params.customer ?? null,
      payment_method: paymentMethod,
      confirmation_method: "automatic",
      description: params.description ?? null,
      metadata: metadataOf(params),
      livemode: false,
      last_payment_error: null,
      latest_charge: null,
      status: "processing",
      created: 1_700_000_000,
    };
    this.#intents.set(intent.id, intent);
    if (behaviour === "succeed") {
      Object.assign(intent, {
        status: "succeeded",
        amount_received: amount,
        latest_charge: `ch_${intent.id.slice(3)}`,
      });
      return [200, intent];
    }
    if (behaviour === "processing") return [200, intent];
    const decline =
      behaviour === "authentication_required"
        ? {
            code: "authentication_required",
            decline_code: "authentication_required",
            message: "Your card was declined. This transaction requires authentication.",
          }
        : behaviour === "insufficient_funds"
          ? {
              code: "card_declined",
              decline_code: "insufficient_funds",
              message: "Your card has insufficient funds.",
            }
          : { code: "card_declined", decline_code: "generic_decline", message: "Your card was declined." };
    const error = {
      type: "card_error",
      ...decline,
      charge: `ch_${intent.id.slice(3)}`,
      doc_url: `https://stripe.com/docs/error-codes/${decline.code}`,
    };
    Object.assign(intent, { status: "requires_payment_method", last_payment_error: error });
    return [
      402,
      {
        error: {
          ...error,
          payment_intent: intent,
          payment_method: { id: paymentMethod, object: "payment_method" },
        },
      },
    ];
  }
}

function invalidRequest(code: string, param: string, message: string) {
  return { error: { type: "invalid_request_error", code, param, message } };
}

function metadataOf(params: Record<string, string>): Record<string, string> {
  const metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(params)) {
    const match = /^metadata\[(.+)\]$/.exec(name);
    if (match?.[1]) metadata[match[1]] = value;
  }
  return metadata;
}

function header(request: IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}
