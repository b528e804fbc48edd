import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

// Money code must never take a detour through binary floating point. These patterns are the usual
// ways it sneaks in; decimal.js (through ExactDecimal) covers every legitimate need, and its plain
// toString() makes even Decimal's own toFixed unnecessary, so that is banned outright too.
const forbiddenPatterns: { pattern: RegExp; reason: string }[] = [
  { pattern: /\bparseFloat\s*\(/, reason: "parseFloat reads into a float; use parseDecimal" },
  { pattern: /Number\.parseFloat/, reason: "parseFloat reads into a float; use parseDecimal" },
  { pattern: /\.toFixed\s*\(/, reason: "toFixed rounds a float; use toMinorUnits or formatDecimal" },
  { pattern: /Math\.(round|floor|ceil|trunc)\s*\(/, reason: "float rounding; use toMinorUnits or Decimal" },
  { pattern: /\.toPrecision\s*\(/, reason: "float formatting; use formatDecimal" },
];

const sourceDirectories = [new URL("../money/", import.meta.url), new URL("../pricing/", import.meta.url)];

function moneySourceFiles(): string[] {
  return sourceDirectories.flatMap((directory) =>
    readdirSync(directory)
      .filter((name) => name.endsWith(".ts") && !name.endsWith(".test.ts"))
      .map((name) => join(directory.pathname, name)),
  );
}

describe("money code guard", () => {
  it("finds the money and pricing sources to scan", () => {
    expect(moneySourceFiles().length).toBeGreaterThanOrEqual(8);
  });

  it("uses no floating-point parsing, rounding or formatting in money and pricing sources", () => {
    const violations: string[] = [];
    for (const file of moneySourceFiles()) {
      readFileSync(file, "utf8")
        .split("\n")
        .forEach((line, index) => {
          for (const { pattern, reason } of forbiddenPatterns) {
            if (pattern.test(line)) violations.push(`${file}:${index + 1}: ${reason}: ${line.trim()}`);
          }
        });
    }
    expect(violations).toEqual([]);
  });
});
