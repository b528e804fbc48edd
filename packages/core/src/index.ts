export * from "./errors/index.ts";
export * from "./ids/index.ts";
export * from "./money/index.ts";
export * from "./pricing/index.ts";
