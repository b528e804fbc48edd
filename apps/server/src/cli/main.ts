import module from "node:module";

// Node keeps the compiled form of every module it loads (type-stripped TypeScript included) in a
// cache directory (NODE_COMPILE_CACHE, else the system's temporary directory), so a later start
// skips compiling some 400 modules: about a tenth of an embedded start. It only applies to modules
// loaded after this call, hence the dynamic import of the program itself.
module.enableCompileCache?.();
await import("./program.ts");
