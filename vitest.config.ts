import { defineConfig } from "vitest/config";

// Every test runs against the embedded database (PGlite). When DATABASE_URL is set (CI sets it),
// the integration tests (*.int.test.ts) run a second time against PostgreSQL.
const onPostgres = Boolean(process.env.DATABASE_URL);
const shared = { testTimeout: 30_000, hookTimeout: 60_000, env: { TZ: "UTC" } };

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          ...shared,
          name: "pglite",
          include: ["{apps,packages,e2e,bench}/**/*.test.ts"],
          env: { ...shared.env, AFORO_TEST_DATABASE: "pglite" },
        },
      },
      ...(onPostgres
        ? [
            {
              test: {
                ...shared,
                name: "postgres",
                include: ["{apps,packages,e2e}/**/*.int.test.ts"],
                env: { ...shared.env, AFORO_TEST_DATABASE: "postgres" },
              },
            },
          ]
        : []),
    ],
  },
});
