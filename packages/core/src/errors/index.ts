export * from "./aforo-error.ts";
export * from "./catalogue.ts";
