import { monotonicFactory } from "ulid";

/**
 * Public ids are a readable prefix plus a ULID: time-sortable (lists page by id), unique across
 * processes, and obvious in logs ("cus_01J…" is a customer). Lower case keeps them URL- and
 * grep-friendly.
 */
export const idPrefixes = {
  tenant: "ten",
  apiKey: "key",
  product: "prod",
  billableUnit: "bu",
  ratePlan: "rp",
  offering: "off",
  promotion: "promo",
  customer: "cus",
  subscription: "sub",
  event: "evt",
  invoice: "inv",
  billRun: "br",
  wallet: "wal",
  request: "req",
  importJob: "imp",
  deadLetter: "dlq",
  creditNote: "cn",
  payment: "pay",
  webhookEndpoint: "we",
  webhookSource: "ws",
  ledgerEntry: "le",
  hold: "hold",
  walletLot: "lot",
  walletDebit: "wdeb",
  topUpRequest: "topup",
  decision: "dec",
  billingEntity: "be",
  taxRate: "txr",
} as const;

export type IdKind = keyof typeof idPrefixes;

const nextUlid = monotonicFactory();

export function newId(kind: IdKind): string {
  return `${idPrefixes[kind]}_${nextUlid().toLowerCase()}`;
}

export function hasIdPrefix(kind: IdKind, value: string): boolean {
  return value.startsWith(`${idPrefixes[kind]}_`);
}
