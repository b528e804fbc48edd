import type { Command } from "commander";
import type { AppContext } from "../context.ts";
import { DEFAULT_PAGE_LIMIT } from "../db/pagination.ts";
import type { Mode } from "../db/schema.ts";
import { toApi } from "../modules/api-keys/routes/index.ts";
import { printJson } from "./output.ts";
import { modeOption, parseLimit, printFields, printMore, printTable, withContext } from "./with-context.ts";

interface ScopeOptions {
  tenant: string;
  mode: Mode;
  json?: boolean;
}

const tenantHelp = "tenant id (ten_…) or slug";
const jsonHelp = "print the result as JSON (the HTTP API's representation)";

/** The tenant named by `--tenant`, by id or slug; an unknown one stops with a not-found error. */
async function tenantIdOf(context: AppContext, idOrSlug: string): Promise<string> {
  return (await context.tenants.get(idOrSlug)).id;
}

function parseScopes(value: string): string[] {
  return value
    .split(",")
    .map((scope) => scope.trim())
    .filter((scope) => scope.length > 0);
}

export function registerKeyCommands(program: Command): void {
  const keys = program
    .command("keys")
    .description("Manage a tenant's secret API keys (works on the database directly, no server needed)");

  keys
    .command("create")
    .description("Create a secret key (the secret is shown once)")
    .requiredOption("--tenant <id|slug>", tenantHelp)
    .addOption(modeOption())
    .option(
      "--scopes <a,b>",
      "comma-separated scopes, e.g. metering:write,entitlements:read (default: *, every scope)",
      parseScopes,
    )
    .option("--name <name>", "a label for the key")
    .option("--json", jsonHelp)
    .action((options: ScopeOptions & { scopes?: string[]; name?: string }) =>
      withContext(async (context) => {
        const tenantId = await tenantIdOf(context, options.tenant);
        const issued = await context.keys.create({
          tenantId,
          mode: options.mode,
          kind: "secret",
          scopes: options.scopes,
          name: options.name,
        });
        const key = toApi(issued.record, context.clock.now());
        if (options.json) {
          printJson({ ...key, key: issued.secret });
          return;
        }
        printFields([
          ["id", key.id],
          ["mode", key.mode],
          ["name", key.name ?? ""],
          ["scopes", key.scopes.join(",")],
          ["secret", issued.secret],
        ]);
        process.stdout.write("\nStore this secret now: it is shown only once.\n");
      }),
    );

  keys
    .command("list")
    .description("List a tenant's keys for one mode, newest first (secrets are never shown)")
    .requiredOption("--tenant <id|slug>", tenantHelp)
    .addOption(modeOption())
    .option("--limit <n>", `how many to show (1-100, default ${DEFAULT_PAGE_LIMIT})`, parseLimit)
    .option("--starting-after <id>", "continue after this key id")
    .option("--json", "print the result as JSON ({data, has_more})")
    .action((options: ScopeOptions & { limit?: number; startingAfter?: string }) =>
      withContext(async (context) => {
        const tenantId = await tenantIdOf(context, options.tenant);
        const page = await context.keys.list(tenantId, options.mode, {
          limit: options.limit ?? DEFAULT_PAGE_LIMIT,
          startingAfter: options.startingAfter,
        });
        const data = page.data.map((key) => toApi(key, context.clock.now()));
        if (options.json) {
          printJson({ data, has_more: page.has_more });
          return;
        }
        if (data.length === 0) {
          process.stdout.write(`No ${options.mode} keys.\n`);
          return;
        }
        printTable(
          ["ID", "KEY", "STATUS", "NAME", "SCOPES", "CREATED"],
          data.map((key) => [
            key.id,
            key.redacted_key,
            key.expires_at && key.status === "expiring" ? `expiring ${key.expires_at}` : key.status,
            key.name ?? "",
            key.scopes.join(","),
            key.created_at,
          ]),
        );
        printMore(page.has_more, data.at(-1)?.id);
      }),
    );

  keys
    .command("rotate")
    .description("Issue a successor key; the old key keeps working for 5 minutes, then expires")
    .argument("<key_id>", "the key to rotate (key_…)")
    .requiredOption("--tenant <id|slug>", tenantHelp)
    .addOption(modeOption())
    .option("--json", `${jsonHelp}, with the old key as previous_key`)
    .action((keyId: string, options: ScopeOptions) =>
      withContext(async (context) => {
        const tenantId = await tenantIdOf(context, options.tenant);
        const issued = await context.keys.rotate(tenantId, options.mode, keyId);
        const now = context.clock.now();
        const previous = toApi(await context.keys.get(tenantId, options.mode, keyId), now);
        const successor = toApi(issued.record, now);
        if (options.json) {
          printJson({ ...successor, key: issued.secret, previous_key: previous });
          return;
        }
        printFields([
          ["id", successor.id],
          ["mode", successor.mode],
          ["scopes", successor.scopes.join(",")],
          ["secret", issued.secret],
          ["old key", `${previous.id} (${previous.redacted_key}) expires at ${previous.expires_at}`],
        ]);
        process.stdout.write("\nStore this secret now: it is shown only once.\n");
      }),
    );

  keys
    .command("revoke")
    .description("Revoke a key at once")
    .argument("<key_id>", "the key to revoke (key_…)")
    .requiredOption("--tenant <id|slug>", tenantHelp)
    .addOption(modeOption())
    .option("--json", jsonHelp)
    .action((keyId: string, options: ScopeOptions) =>
      withContext(async (context) => {
        const tenantId = await tenantIdOf(context, options.tenant);
        const key = toApi(await context.keys.revoke(tenantId, options.mode, keyId), context.clock.now());
        if (options.json) {
          printJson(key);
          return;
        }
        printFields([
          ["id", key.id],
          ["key", key.redacted_key],
          ["status", key.status],
          ["revoked at", key.revoked_at ?? ""],
        ]);
      }),
    );
}
