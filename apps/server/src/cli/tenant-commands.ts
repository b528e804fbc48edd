import type { Command } from "commander";

export function registerTenantCommands(_program: Command): void {}
