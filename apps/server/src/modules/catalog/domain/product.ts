/**
 * Products and the two state machines a product moves through: its maturity (`lifecycle`) and
 * its storefront visibility (`status`). Both are enforced; the tables below are the contract.
 */
export const productTypes = ["API", "AGENTIC_API", "AI_AGENT", "MCP_SERVER"] as const;
export type ProductType = (typeof productTypes)[number];

export const audiences = ["INTERNAL", "EXTERNAL", "PARTNER"] as const;
export type Audience = (typeof audiences)[number];

export const lifecycles = ["EXPERIMENTAL", "BETA", "GA", "DEPRECATED", "RETIRED"] as const;
export type Lifecycle = (typeof lifecycles)[number];

export const publishStatuses = ["DRAFT", "IN_REVIEW", "PUBLISHED", "ARCHIVED"] as const;
export type PublishStatus = (typeof publishStatuses)[number];

export const DEFAULT_AUDIENCE: Audience = "EXTERNAL";
/**
 * A new product is generally available unless said otherwise: most products catalogued are APIs
 * already in production, and GA keeps every later move (deprecate, retire) one documented step.
 */
export const DEFAULT_LIFECYCLE: Lifecycle = "GA";
/** New products start hidden from the storefront ("Save as Draft"). */
export const DEFAULT_PUBLISH_STATUS: PublishStatus = "DRAFT";

/**
 * Maturity moves forward, except that a deprecation can be withdrawn (DEPRECATED → GA).
 * GA → RETIRED is absent on purpose: customers must be warned by a deprecation first.
 */
export const lifecycleTransitions: Readonly<Record<Lifecycle, readonly Lifecycle[]>> = {
  EXPERIMENTAL: ["BETA", "GA", "RETIRED"],
  BETA: ["GA", "DEPRECATED"],
  GA: ["DEPRECATED"],
  DEPRECATED: ["GA", "RETIRED"],
  RETIRED: [],
};

export const publishTransitions: Readonly<Record<PublishStatus, readonly PublishStatus[]>> = {
  DRAFT: ["IN_REVIEW", "PUBLISHED", "ARCHIVED"],
  IN_REVIEW: ["DRAFT", "PUBLISHED", "ARCHIVED"],
  PUBLISHED: ["ARCHIVED", "DRAFT"],
  ARCHIVED: ["DRAFT"],
};

export interface TransitionRefusal {
  field: "lifecycle" | "status";
  detail: string;
}

/** Staying in the same state is always allowed (a PATCH that repeats the current value). */
export function checkLifecycleTransition(from: Lifecycle, to: Lifecycle): TransitionRefusal | undefined {
  if (from === to || lifecycleTransitions[from].includes(to)) return undefined;
  let detail = `A product's lifecycle cannot move from ${from} to ${to}.`;
  if (from === "GA" && to === "RETIRED") detail += " Deprecate it first (GA → DEPRECATED → RETIRED).";
  else if (from === "RETIRED") detail += " RETIRED is terminal.";
  else detail += ` From ${from} it can move to ${lifecycleTransitions[from].join(", ")}.`;
  return { field: "lifecycle", detail };
}

export function checkPublishTransition(
  from: PublishStatus,
  to: PublishStatus,
): TransitionRefusal | undefined {
  if (from === to || publishTransitions[from].includes(to)) return undefined;
  return {
    field: "status",
    detail: `A product's status cannot move from ${from} to ${to}. From ${from} it can move to ${publishTransitions[from].join(", ")}.`,
  };
}

export interface Product {
  id: string;
  tenantId: string;
  mode: "live" | "test";
  name: string;
  type: ProductType;
  description: string | null;
  audience: Audience;
  lifecycle: Lifecycle;
  status: PublishStatus;
  metadata: Record<string, string>;
  billableUnitIds: string[];
  createdAt: Date;
  updatedAt: Date;
}
