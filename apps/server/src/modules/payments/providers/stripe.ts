import type Stripe from "stripe";
import {
  type ChargeOutcome,
  type ChargeRequest,
  type PaymentProvider,
  ProviderUnavailable,
} from "./provider.ts";

/** Where the Stripe API is: api.stripe.com in production, a local double (or stripe-mock) in tests. */
export interface StripeEndpoint {
  host?: string | undefined;
  port?: number | undefined;
  protocol?: "http" | "https" | undefined;
  /** The SDK retries connection errors, 409s and 5xx with the same idempotency key. */
  maxNetworkRetries?: number | undefined;
  timeoutMs?: number | undefined;
}

/** AFORO_STRIPE_API_URL ("http://127.0.0.1:12111") as the SDK's host, port and protocol. */
export function stripeEndpointOf(url: string | undefined): StripeEndpoint {
  if (!url) return {};
  const parsed = new URL(url);
  const protocol = parsed.protocol === "http:" ? "http" : "https";
  return {
    host: parsed.hostname,
    port: parsed.port ? Number(parsed.port) : protocol === "http" ? 80 : 443,
    protocol,
  };
}

const MAX_STRIPE_AMOUNT = 99_999_999n;

/**
 * Charges a saved payment method with a PaymentIntent confirmed off-session (the customer is not
 * present), through the official SDK. Declines and refusals come back as outcomes; failures that
 * leave the outcome unknown (network, Stripe's own errors, rate limits, an idempotent request
 * still in flight) throw ProviderUnavailable.
 */
export class StripeProvider implements PaymentProvider {
  readonly name = "stripe" as const;
  readonly #secretKey: string;
  readonly #endpoint: StripeEndpoint;
  #stripe: Promise<Stripe> | undefined;

  constructor(secretKey: string, endpoint: StripeEndpoint = {}) {
    this.#secretKey = secretKey;
    this.#endpoint = endpoint;
  }

  /** The SDK is loaded on the first charge, not when the server starts (a tenth of a start). */
  #client(): Promise<Stripe> {
    const endpoint = this.#endpoint;
    this.#stripe ??= loadStripe().then(
      (StripeSdk) =>
        new StripeSdk(this.#secretKey, {
          ...(endpoint.host ? { host: endpoint.host } : {}),
          ...(endpoint.port ? { port: endpoint.port } : {}),
          ...(endpoint.protocol ? { protocol: endpoint.protocol } : {}),
          maxNetworkRetries: endpoint.maxNetworkRetries ?? 2,
          timeout: endpoint.timeoutMs ?? 30_000,
          appInfo: { name: "Aforo" },
        }),
    );
    return this.#stripe;
  }

  async charge(request: ChargeRequest): Promise<ChargeOutcome> {
    if (!request.method) {
      return {
        status: "failed",
        providerPaymentId: null,
        code: "no_payment_method",
        reason: "No saved method.",
      };
    }
    if (request.amount <= 0n || request.amount > MAX_STRIPE_AMOUNT) {
      return {
        status: "failed",
        providerPaymentId: null,
        code: "amount_out_of_range",
        reason: `Stripe charges from 1 to ${MAX_STRIPE_AMOUNT} minor units; ${request.amount} was asked.`,
      };
    }
    try {
      const intent = await (await this.#client()).paymentIntents.create(
        {
          // Safe: bounded by MAX_STRIPE_AMOUNT above.
          amount: Number(request.amount),
          currency: request.currency.toLowerCase(),
          payment_method: request.method.providerPaymentMethodId,
          ...(request.method.providerCustomerId ? { customer: request.method.providerCustomerId } : {}),
          confirm: true,
          off_session: true,
          description: request.description,
          metadata: request.metadata,
        },
        { idempotencyKey: request.idempotencyKey },
      );
      return outcomeOf(intent);
    } catch (error) {
      return refusalOf(error, await loadStripe());
    }
  }

  async retrieve(providerPaymentId: string): Promise<ChargeOutcome> {
    try {
      return outcomeOf(await (await this.#client()).paymentIntents.retrieve(providerPaymentId));
    } catch (error) {
      return refusalOf(error, await loadStripe());
    }
  }
}

let sdk: Promise<typeof Stripe> | undefined;

function loadStripe(): Promise<typeof Stripe> {
  sdk ??= import("stripe").then((module) => module.default);
  return sdk;
}

function outcomeOf(intent: Stripe.PaymentIntent): ChargeOutcome {
  const providerPaymentId = intent.id;
  switch (intent.status) {
    case "succeeded":
      return { status: "succeeded", providerPaymentId };
    case "processing":
      return { status: "pending", providerPaymentId };
    case "requires_action":
    case "requires_confirmation":
      return {
        status: "requires_action",
        providerPaymentId,
        reason: "The payment needs the customer to authenticate it.",
      };
    case "canceled":
      return {
        status: "failed",
        providerPaymentId,
        code: "canceled",
        reason: "The PaymentIntent was canceled.",
      };
    default: {
      const error = intent.last_payment_error;
      return {
        status: "failed",
        providerPaymentId,
        code: error?.decline_code ?? error?.code ?? intent.status,
        reason: error?.message ?? `The PaymentIntent is ${intent.status}.`,
      };
    }
  }
}

/** Stripe's refusals are outcomes; errors whose outcome is unknown are ProviderUnavailable. */
function refusalOf(error: unknown, StripeSdk: typeof Stripe): ChargeOutcome {
  if (!(error instanceof StripeSdk.errors.StripeError)) {
    throw new ProviderUnavailable(error instanceof Error ? error.message : String(error), { cause: error });
  }
  const providerPaymentId = error.payment_intent?.id ?? null;
  if (error instanceof StripeSdk.errors.StripeCardError) {
    if (error.code === "authentication_required") {
      return { status: "requires_action", providerPaymentId, reason: error.message };
    }
    return {
      status: "failed",
      providerPaymentId,
      code: error.decline_code || error.code || "card_declined",
      reason: error.message,
    };
  }
  if (
    error instanceof StripeSdk.errors.StripeInvalidRequestError ||
    error instanceof StripeSdk.errors.StripeAuthenticationError ||
    error instanceof StripeSdk.errors.StripePermissionError
  ) {
    // The request was refused before any money moved: an unusable method, a wrong key.
    const fallback =
      error instanceof StripeSdk.errors.StripeInvalidRequestError ? "invalid_request" : "provider_refused";
    return { status: "failed", providerPaymentId, code: error.code ?? fallback, reason: error.message };
  }
  // Connection errors, rate limits, idempotency conflicts (the first request is still running)
  // and Stripe's own 5xx: nothing is known about the charge yet.
  throw new ProviderUnavailable(error.message, { cause: error });
}
