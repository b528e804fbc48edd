import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InvalidPlanItemError } from "@aforo/core";
import { Command } from "commander";
import { afterEach, describe, expect, it, onTestFinished, vi } from "vitest";
import {
  describeError,
  PriceCommandError,
  parseQuantities,
  registerPriceCommand,
  runPrice,
} from "./price-command.ts";

const documentedPlan = {
  name: "API Pro",
  currency: "USD",
  items: [
    {
      model: "GRADUATED",
      billable_unit: "api_calls",
      tiers: [
        { up_to: 1000, unit_price: "0.010" },
        { up_to: 10000, unit_price: "0.008" },
        { up_to: null, unit_price: "0.005" },
      ],
    },
    { model: "FLAT_RATE", flat_amount: "20", timing: "in_advance" },
  ],
};

function files(contents: Record<string, unknown>) {
  return async (path: string) => {
    const content = contents[path];
    if (content === undefined) throw new Error(`ENOENT: ${path}`);
    return typeof content === "string" ? content : JSON.stringify(content);
  };
}

describe("aforo price (plan file)", () => {
  afterEach(() => vi.restoreAllMocks());

  it("prints each line, its tiers and the total", async () => {
    const text = await runPrice(
      { plan: "plan.json", quantity: ["api_calls=15000"] },
      { readFile: files({ "plan.json": documentedPlan }) },
    );
    const lines = text.split("\n");
    expect(lines[0]).toBe("Plan plan.json (USD)");
    expect(text).toMatch(/api_calls\s+GRADUATED\s+15000\s+107\.00/);
    expect(text).toMatch(/up to 1000\s+tier\s+1000\s+0\.01\s+10/);
    expect(text).toMatch(/up to 10000\s+tier\s+9000\s+0\.008\s+72/);
    expect(text).toMatch(/above 10000\s+tier\s+5000\s+0\.005\s+25/);
    expect(text).toMatch(/-\s+FLAT_RATE\s+1\s+20\s+20\.00/);
    expect(lines.at(-2)).toMatch(/^TOTAL\s+127\.00 USD$/);
  });

  it("prints the preview as JSON with --json, amounts in minor units", async () => {
    const text = await runPrice(
      { plan: "plan.json", quantity: ["api_calls=15000"], json: true },
      { readFile: files({ "plan.json": { ...documentedPlan, currency: undefined } }) },
    ).catch((error: unknown) => error);
    expect(text).toBeInstanceOf(PriceCommandError);
    const json = JSON.parse(
      await runPrice(
        { plan: "plan.json", quantity: ["api_calls=15000"], currency: "usd", json: true },
        { readFile: files({ "plan.json": { ...documentedPlan, currency: undefined } }) },
      ),
    );
    expect(json).toMatchObject({
      currency: "USD",
      total: 12700,
      lines: [{ amount: 10700 }, { amount: 2000 }],
    });
  });

  it("reports every invalid item with its field path", async () => {
    const bad = { currency: "USD", items: [{ model: "PER_UNIT", billable_unit: "x", unit_price: "-1" }] };
    const error = await runPrice({ plan: "bad.json" }, { readFile: files({ "bad.json": bad }) }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(InvalidPlanItemError);
    expect(describeError(error)).toContain("items[0].unit_price: must not be negative");
  });

  it("refuses malformed quantities and missing plan references", async () => {
    expect(parseQuantities(["a=1", "b = 2.5"])).toEqual({ a: "1", b: "2.5" });
    expect(() => parseQuantities(["a"])).toThrow(PriceCommandError);
    expect(() => parseQuantities(["=5"])).toThrow(PriceCommandError);
    expect(() => parseQuantities(["a=lots"])).toThrow(PriceCommandError);
    await expect(runPrice({ tenant: "acme" })).rejects.toThrow(/--rate-plan/);
  });

  it("is wired into commander with repeatable --quantity and --version", async () => {
    const folder = await mkdtemp(join(tmpdir(), "aforo-price-"));
    onTestFinished(() => rm(folder, { recursive: true, force: true }));
    const path = join(folder, "plan.json");
    await writeFile(path, JSON.stringify(documentedPlan));
    const written: string[] = [];
    vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
    const program = new Command().exitOverride();
    registerPriceCommand(program);
    await program.parseAsync(
      ["price", "--plan", path, "--quantity", "api_calls=500", "--quantity", "api_calls=15000", "--json"],
      {
        from: "user",
      },
    );
    expect(JSON.parse(written.join("")).total).toBe(12700);
  });
});
