import { describe, expect, it } from "vitest";
import {
  exitCodeOf,
  formatFor,
  type ImportJobView,
  ImportUsageError,
  isFinal,
  summaryOf,
} from "./import-command.ts";

const job = (overrides: Partial<ImportJobView> = {}): ImportJobView => ({
  id: "imp_1",
  status: "COMPLETED",
  format: "ndjson",
  filename: "usage.ndjson",
  total_rows: 3,
  processed_rows: 3,
  accepted_rows: 3,
  duplicate_rows: 0,
  failed_rows: 0,
  errors: [],
  ...overrides,
});

describe("aforo import helpers", () => {
  it("takes the format from --format, else from the extension, else asks for it", () => {
    expect(formatFor("a/usage.jsonl", undefined)).toBe("ndjson");
    expect(formatFor("usage.CSV", undefined)).toBe("csv");
    expect(formatFor("usage.txt", "csv")).toBe("csv");
    expect(() => formatFor("usage.txt", undefined)).toThrow(ImportUsageError);
  });

  it("exits 0 only for a COMPLETED import and stops polling at a final status", () => {
    expect(exitCodeOf(job())).toBe(0);
    expect(exitCodeOf(job({ status: "PARTIAL" }))).toBe(1);
    expect(exitCodeOf(job({ status: "FAILED" }))).toBe(1);
    expect(isFinal(job({ status: "PROCESSING" }))).toBe(false);
    expect(isFinal(job({ status: "QUEUED" }))).toBe(false);
    expect(isFinal(job({ status: "FAILED" }))).toBe(true);
  });

  it("summarises the counts and at most ten errors, naming file-level errors as such", () => {
    const errors = Array.from({ length: 12 }, (_, index) => ({
      row: index,
      code: "unknown-customer",
      message: `bad ${index}`,
    }));
    const text = summaryOf(job({ status: "PARTIAL", failed_rows: 12, accepted_rows: 0, errors }));
    expect(text).toContain("Import imp_1 (usage.ndjson): PARTIAL\n");
    expect(text).toContain("First errors (10 of 12):\n");
    expect(text).toContain("  file  unknown-customer  bad 0\n");
    expect(text).toContain("  row 9  unknown-customer  bad 9\n");
    expect(text).not.toContain("bad 10");
    expect(summaryOf(job())).not.toContain("First errors");
  });
});
