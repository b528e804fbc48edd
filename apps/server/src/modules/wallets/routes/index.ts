import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance } from "fastify";
import { Type } from "typebox";
import type { AppContext } from "../../../context.ts";
import { tenantScope } from "../../../http/auth.ts";
import { IdParams, listOf, PaginationQuery, problemResponses, Timestamp } from "../../../http/schemas.ts";
import {
  BucketSchema,
  DebitSchema,
  debitToApi,
  entryToApi,
  HoldSchema,
  holdToApi,
  LedgerEntrySchema,
  MinorUnits,
  TopUpRequestSchema,
  topUpRequestToApi,
  WalletSchema,
  walletToApi,
} from "./schemas.ts";

const tags = ["Wallets"];
const read = { scope: "wallets:read" as const };
const write = { scope: "wallets:write" as const };
const Currency = Type.String({ pattern: "^[A-Z]{3}$" });
const IdempotencyKey = Type.String({ minLength: 1, maxLength: 255 });

export async function walletRoutes(app: FastifyInstance, { context }: { context: AppContext }) {
  const routes = app.withTypeProvider<TypeBoxTypeProvider>();
  for (const schema of [WalletSchema, LedgerEntrySchema, HoldSchema, DebitSchema, TopUpRequestSchema])
    app.addSchema(schema);
  const wallets = context.wallets;

  routes.post(
    "/v1/customers/:id/wallets",
    {
      config: write,
      schema: {
        tags,
        summary: "Open the customer's wallet in a currency (one per customer and currency)",
        description:
          "201 when created; 200 with the existing wallet when the customer already has one in that currency.",
        params: IdParams,
        body: Type.Object({ currency: Currency }),
        response: { 200: Type.Ref("Wallet"), 201: Type.Ref("Wallet"), ...problemResponses(404, 422) },
      },
    },
    async (request, reply) => {
      const result = await wallets.create(tenantScope(request), request.params.id, request.body.currency);
      return reply.code(result.created ? 201 : 200).send(walletToApi(result.wallet));
    },
  );

  routes.get(
    "/v1/customers/:id/wallets",
    {
      config: read,
      schema: {
        tags,
        summary: "The customer's wallets (minor units)",
        params: IdParams,
        response: { 200: listOf(Type.Ref("Wallet")), ...problemResponses(404) },
      },
    },
    async (request) => {
      const data = await wallets.list(tenantScope(request), request.params.id);
      return { data: data.map(walletToApi), has_more: false };
    },
  );

  routes.get(
    "/v1/wallets/:id",
    {
      config: read,
      schema: {
        tags,
        summary: "Get a wallet",
        params: IdParams,
        response: { 200: Type.Ref("Wallet"), ...problemResponses(404) },
      },
    },
    async (request) => walletToApi(await wallets.get(tenantScope(request), request.params.id)),
  );

  routes.post(
    "/v1/wallets/:id/credits",
    {
      config: write,
      schema: {
        tags,
        summary: "Credit a bucket, optionally until an expiry (what is left then is written off)",
        params: IdParams,
        body: Type.Object({
          amount: MinorUnits,
          bucket: Type.Optional(BucketSchema),
          expires_at: Type.Optional(Timestamp),
          idempotency_key: Type.Optional(IdempotencyKey),
        }),
        response: { 201: Type.Ref("LedgerEntry"), ...problemResponses(404, 422) },
      },
    },
    async (request, reply) => {
      const { amount, bucket, expires_at, idempotency_key } = request.body;
      const entry = await wallets.credit(tenantScope(request), request.params.id, {
        amount: BigInt(amount),
        bucket: bucket ?? "CASH",
        expiresAt: expires_at === undefined ? undefined : new Date(expires_at),
        idempotencyKey: idempotency_key,
      });
      return reply.code(201).send(entryToApi(entry));
    },
  );

  routes.post(
    "/v1/wallets/debit",
    {
      config: write,
      schema: {
        tags,
        summary: "Debit a customer's wallet in the waterfall order PROMOTIONAL → BONUS → CASH",
        description:
          "The same idempotency_key replays the first debit (same entries); with another amount it is a 409. A debit the spendable balance cannot cover is a 422 insufficient-funds.",
        body: Type.Object({
          customer_id: Type.String({ minLength: 1, maxLength: 100 }),
          amount: MinorUnits,
          currency: Currency,
          strategy: Type.Optional(Type.Literal("WATERFALL")),
          idempotency_key: IdempotencyKey,
        }),
        response: { 201: Type.Ref("WalletDebit"), ...problemResponses(409, 422) },
      },
    },
    async (request, reply) => {
      const { debit, entries } = await wallets.debit(tenantScope(request), {
        customerId: request.body.customer_id,
        amount: BigInt(request.body.amount),
        currency: request.body.currency,
        idempotencyKey: request.body.idempotency_key,
      });
      return reply.code(201).send(debitToApi(debit, entries));
    },
  );

  routes.get(
    "/v1/wallets/:id/ledger",
    {
      config: read,
      schema: {
        tags,
        summary: "The wallet's immutable entries, newest first; the balance is the sum of their amounts",
        params: IdParams,
        querystring: PaginationQuery,
        response: { 200: listOf(Type.Ref("LedgerEntry")), ...problemResponses(404) },
      },
    },
    async (request) => {
      const page = await wallets.ledger(tenantScope(request), request.params.id, {
        limit: request.query.limit,
        startingAfter: request.query.starting_after,
      });
      return { data: page.data.map(entryToApi), has_more: page.has_more };
    },
  );

  routes.post(
    "/v1/wallets/:id/holds",
    {
      config: write,
      schema: {
        tags,
        summary: "Reserve an amount (then commit or release it)",
        params: IdParams,
        body: Type.Object({ amount: MinorUnits, idempotency_key: Type.Optional(IdempotencyKey) }),
        response: { 201: Type.Ref("Hold"), ...problemResponses(404, 409, 422) },
      },
    },
    async (request, reply) => {
      const hold = await wallets.hold(tenantScope(request), request.params.id, {
        amount: BigInt(request.body.amount),
        idempotencyKey: request.body.idempotency_key,
      });
      return reply.code(201).send(holdToApi(hold));
    },
  );

  routes.get(
    "/v1/holds/:id",
    {
      config: read,
      schema: {
        tags,
        summary: "Get a hold",
        params: IdParams,
        response: { 200: Type.Ref("Hold"), ...problemResponses(404) },
      },
    },
    async (request) => holdToApi(await wallets.getHold(tenantScope(request), request.params.id)),
  );

  routes.post(
    "/v1/holds/:id/commit",
    {
      config: write,
      schema: {
        tags,
        summary: "Debit what the hold reserved (all of it, or `amount`) and give the rest back",
        params: IdParams,
        body: Type.Optional(
          Type.Object({
            amount: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })),
          }),
        ),
        response: { 200: Type.Ref("Hold"), ...problemResponses(404, 409, 422) },
      },
    },
    async (request) => {
      const amount = request.body?.amount;
      const hold = await wallets.commitHold(
        tenantScope(request),
        request.params.id,
        amount === undefined ? undefined : BigInt(amount),
      );
      return holdToApi(hold);
    },
  );

  routes.post(
    "/v1/holds/:id/release",
    {
      config: write,
      schema: {
        tags,
        summary: "Give everything the hold reserved back",
        params: IdParams,
        response: { 200: Type.Ref("Hold"), ...problemResponses(404, 409) },
      },
    },
    async (request) => holdToApi(await wallets.releaseHold(tenantScope(request), request.params.id)),
  );

  routes.put(
    "/v1/wallets/:id/auto_top_up",
    {
      config: write,
      schema: {
        tags,
        summary: "When a movement takes the balance below the threshold, request one top-up",
        description:
          "One PENDING top-up request per crossing (listed at /v1/wallets/{id}/top_up_requests); the charge itself is made by payments.",
        params: IdParams,
        body: Type.Object({
          threshold: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
          amount: MinorUnits,
          bucket: Type.Optional(Type.Literal("CASH")),
          enabled: Type.Optional(Type.Boolean()),
        }),
        response: { 200: Type.Ref("Wallet"), ...problemResponses(404, 422) },
      },
    },
    async (request) => {
      const wallet = await wallets.setAutoTopUp(tenantScope(request), request.params.id, {
        threshold: BigInt(request.body.threshold),
        amount: BigInt(request.body.amount),
        bucket: request.body.bucket ?? "CASH",
        enabled: request.body.enabled ?? true,
      });
      return walletToApi(wallet);
    },
  );

  routes.get(
    "/v1/wallets/:id/top_up_requests",
    {
      config: read,
      schema: {
        tags,
        summary: "Top-up requests auto top-up recorded, newest first",
        params: IdParams,
        querystring: PaginationQuery,
        response: { 200: listOf(Type.Ref("TopUpRequest")), ...problemResponses(404) },
      },
    },
    async (request) => {
      const page = await wallets.topUpRequests(tenantScope(request), request.params.id, {
        limit: request.query.limit,
        startingAfter: request.query.starting_after,
      });
      return { data: page.data.map(topUpRequestToApi), has_more: page.has_more };
    },
  );
}
