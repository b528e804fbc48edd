import type { Kysely } from "kysely";
import type { DatabaseHandle } from "../../db/database.ts";
import type { Database } from "../../db/schema.ts";
import type { TenantScope } from "../../http/route-config.ts";
import type { WalletService } from "../wallets/service.ts";
import type { Collection } from "./collection.ts";
import type { Payment } from "./domain.ts";
import { ProviderUnavailable } from "./providers/provider.ts";
import * as store from "./store.ts";

/**
 * Wallet auto top-ups: the wallets module records a PENDING request when a balance crosses its
 * threshold; this charges it to the customer's default method and, once paid, credits the wallet's
 * CASH bucket under the request's key (credited once, however often a crash makes it run again).
 */
export class TopUps {
  readonly #database: DatabaseHandle;
  readonly #collection: Collection;
  readonly #wallets: WalletService;

  constructor(database: DatabaseHandle, collection: Collection, wallets: WalletService) {
    this.#database = database;
    this.#collection = collection;
    this.#wallets = wallets;
  }

  get #db(): Kysely<Database> {
    return this.#database.db;
  }

  /** Charges one PENDING request; without a default method the request fails. */
  async collect(scope: TenantScope, requestId: string): Promise<boolean> {
    const earlier = await store.paymentsFor(this.#db, scope, { topUpRequestId: requestId });
    const paid = earlier.find((payment) => payment.status === "SUCCEEDED");
    if (paid) {
      // Charged before a crash, never credited: credit it now.
      await this.credit(scope, paid);
      return true;
    }
    if (earlier.some((payment) => payment.status === "PENDING")) return false;
    const begun = await this.#db.transaction().execute(async (trx) => {
      const request = await store.findTopUp(trx, scope, requestId, { forUpdate: true });
      if (request?.status !== "PENDING") return undefined;
      const payments = await store.paymentsFor(trx, scope, { topUpRequestId: requestId });
      if (payments.some((payment) => payment.status !== "FAILED")) return undefined;
      const method = await store.defaultMethod(trx, scope, request.customerId);
      if (!method) {
        await store.decideTopUp(trx, scope, requestId, "FAILED");
        return undefined;
      }
      return this.#collection.beginIn(trx, scope, { topUp: request, method, trigger: "top_up", cycle: null });
    });
    if (!begun) return false;
    const outcome = await this.#collection.charge(scope, begun).catch((error: unknown) => {
      if (error instanceof ProviderUnavailable) return undefined; // resumed once stale
      throw error;
    });
    if (outcome) await this.#collection.settle(scope, begun.payment.id, outcome);
    return true;
  }

  /** Credits a paid request's amount to the wallet's CASH bucket, once, and marks it SUCCEEDED. */
  async credit(scope: TenantScope, payment: Payment): Promise<void> {
    if (!payment.topUpRequestId) return;
    const request = await store.findTopUp(this.#db, scope, payment.topUpRequestId);
    if (request?.status !== "PENDING") return;
    await this.#wallets.credit(scope, request.walletId, {
      amount: payment.amount,
      bucket: "CASH",
      idempotencyKey: `top_up:${request.id}`,
    });
    await store.decideTopUp(this.#db, scope, request.id, "SUCCEEDED");
  }
}
