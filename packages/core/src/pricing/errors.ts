import type { ValidationIssue } from "./types.ts";

/** A plan item (or a whole plan) that cannot be rated; `issues` say which fields and why. */
export class InvalidPlanItemError extends Error {
  readonly issues: ValidationIssue[];

  constructor(issues: ValidationIssue[]) {
    super(`invalid plan item: ${issues.map((issue) => `${issue.field} ${issue.message}`).join("; ")}`);
    this.name = "InvalidPlanItemError";
    this.issues = issues;
  }
}

/** A quantity that is not a non-negative decimal. */
export class InvalidQuantityError extends Error {
  readonly field: string;

  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = "InvalidQuantityError";
    this.field = field;
  }
}
