#!/usr/bin/env node
// The `aforo` command. Runs the TypeScript sources directly through Node's type stripping (Node >= 22.18).
await import("../src/cli/main.ts");
