import type { ChargeOutcome, ChargeRequest, PaymentProvider } from "./provider.ts";

/**
 * Offline payments (a bank transfer, a cheque, cash): the operator says the money arrived, so the
 * "charge" records it as given. The operator's reference, if any, becomes the provider payment id.
 */
export const manualProvider: PaymentProvider = {
  name: "manual",
  async charge(request: ChargeRequest): Promise<ChargeOutcome> {
    return { status: "succeeded", providerPaymentId: request.reference ?? null };
  },
  async retrieve(providerPaymentId: string): Promise<ChargeOutcome> {
    return { status: "succeeded", providerPaymentId };
  },
};
