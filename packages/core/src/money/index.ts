export * from "./currencies.ts";
export * from "./decimal.ts";
export * from "./minor-units.ts";
