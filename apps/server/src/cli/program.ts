import { Command } from "commander";
import { registerBillRunCommand } from "./bill-run-command.ts";
import { registerDatabaseCommands } from "./database-commands.ts";
import { registerImportCommand } from "./import-command.ts";
import { registerKeyCommands } from "./key-commands.ts";
import { registerPriceCommand } from "./price-command.ts";
import { registerServerCommands } from "./server-commands.ts";
import { registerTenantCommands } from "./tenant-commands.ts";

const program = new Command()
  .name("aforo")
  .description("Aforo: the open-source monetization control plane")
  .showHelpAfterError()
  .configureHelp({ sortSubcommands: true });

registerServerCommands(program);
registerDatabaseCommands(program);
registerTenantCommands(program);
registerKeyCommands(program);
registerPriceCommand(program);
registerImportCommand(program);
registerBillRunCommand(program);

await program.parseAsync(process.argv);
