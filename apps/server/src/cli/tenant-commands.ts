import type { Command } from "commander";
import { DEFAULT_PAGE_LIMIT } from "../db/pagination.ts";
import { toApi } from "../modules/tenants/routes/index.ts";
import { printJson } from "./output.ts";
import { parseLimit, printFields, printMore, printTable, withContext } from "./with-context.ts";

export function registerTenantCommands(program: Command): void {
  const tenants = program
    .command("tenants")
    .description("Create and list tenants (works on the database directly, no server needed)");

  tenants
    .command("create")
    .description("Create a tenant with a live and a sandbox secret key (the secrets are shown once)")
    .requiredOption("--name <name>", "display name")
    .option("--slug <slug>", "3-63 lower-case letters, digits or hyphens (default: derived from the name)")
    .option("--json", "print the result as JSON (the HTTP API's representation)")
    .action((options: { name: string; slug?: string; json?: boolean }) =>
      withContext(async (context) => {
        const { tenant, keys } = await context.tenants.create({ name: options.name, slug: options.slug });
        if (options.json) {
          printJson({ ...toApi(tenant), api_keys: { live: keys.live.secret, test: keys.test.secret } });
          return;
        }
        printFields([
          ["id", tenant.id],
          ["slug", tenant.slug],
          ["name", tenant.name],
          ["live key", keys.live.secret],
          ["test key", keys.test.secret],
        ]);
        process.stdout.write("\nStore these secret keys now: they are shown only once.\n");
      }),
    );

  tenants
    .command("list")
    .description("List tenants, newest first")
    .option("--limit <n>", `how many to show (1-100, default ${DEFAULT_PAGE_LIMIT})`, parseLimit)
    .option("--starting-after <id>", "continue after this tenant id")
    .option("--json", "print the result as JSON ({data, has_more})")
    .action((options: { limit?: number; startingAfter?: string; json?: boolean }) =>
      withContext(async (context) => {
        const page = await context.tenants.list({
          limit: options.limit ?? DEFAULT_PAGE_LIMIT,
          startingAfter: options.startingAfter,
        });
        if (options.json) {
          printJson({ data: page.data.map(toApi), has_more: page.has_more });
          return;
        }
        if (page.data.length === 0) {
          process.stdout.write("No tenants.\n");
          return;
        }
        printTable(
          ["ID", "SLUG", "NAME", "CREATED"],
          page.data.map((tenant) => [tenant.id, tenant.slug, tenant.name, tenant.createdAt.toISOString()]),
        );
        printMore(page.has_more, page.data.at(-1)?.id);
      }),
    );
}
