/** One charge, in the invoice's (or wallet's) currency and minor units. */
export interface ChargeRequest {
  amount: bigint;
  /** ISO 4217, upper case. */
  currency: string;
  /** The customer's saved method at the provider (null for the manual provider). */
  method: { providerPaymentMethodId: string; providerCustomerId: string | null } | null;
  /**
   * Sent with the charge: the provider answers a repeated request with the first one's result,
   * so a charge retried after a timeout or a crash is never made twice.
   */
  idempotencyKey: string;
  description: string;
  metadata: Record<string, string>;
  /** Manual payments: the operator's reference (a bank transfer id, a cheque number). */
  reference?: string | undefined;
}

/**
 * What the provider answered. `pending`: it is still processing (bank debits); the payment is
 * looked up again later. A provider that cannot be reached, or fails on its side, throws
 * ProviderUnavailable instead: the outcome is then unknown and the charge is resumed later with
 * the same idempotency key.
 */
export type ChargeOutcome =
  | { status: "succeeded"; providerPaymentId: string | null }
  | { status: "failed"; providerPaymentId: string | null; code: string; reason: string }
  | { status: "requires_action"; providerPaymentId: string | null; reason: string }
  | { status: "pending"; providerPaymentId: string | null };

export class ProviderUnavailable extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ProviderUnavailable";
  }
}

export interface PaymentProvider {
  readonly name: "manual" | "stripe";
  /** Charges the customer's saved method off-session (the customer is not present). */
  charge(request: ChargeRequest): Promise<ChargeOutcome>;
  /** The current outcome of an earlier charge, by the provider's id for it. */
  retrieve(providerPaymentId: string): Promise<ChargeOutcome>;
}
