import { Ajv, type Options } from "ajv";
import * as ajvFormats from "ajv-formats";
import type { FastifySchemaCompiler } from "fastify";

type AddFormats = (ajv: Ajv) => Ajv;
// ajv-formats ships CommonJS; under ESM its plugin may be wrapped in one or two `default`s.
const formatsModule = ajvFormats as unknown as { default: AddFormats | { default: AddFormats } };
const addFormats: AddFormats =
  typeof formatsModule.default === "function" ? formatsModule.default : formatsModule.default.default;

const common: Options = {
  allErrors: true,
  useDefaults: true,
  removeAdditional: true,
  strict: false,
};

/**
 * Bodies are validated strictly: `"name": 5` is a wrong type (400), not a string to coerce.
 * Query strings and path parameters arrive as text, so they are coerced ("limit=20" → 20).
 *
 * Installed as a factory (Fastify's `schemaController.compilersFactory.buildValidator`), not with
 * `setValidatorCompiler`: a plugin that calls `addSchema` gets its validator rebuilt from the
 * factory, and the default factory would bring coercion back for bodies.
 */
export function buildValidatorCompiler(
  externalSchemas: Record<string, unknown> = {},
): FastifySchemaCompiler<unknown> {
  return createValidatorFactory()(externalSchemas);
}

/**
 * One app's validator factory. Fastify asks for a compiler in every plugin context that adds
 * shared schemas (some 150 times at start); each new pair of Ajv instances compiled the JSON Schema
 * meta-schema again, a third of the server's start. Here one pair serves every context: the shared
 * schemas are named by `$id`, unique across the app, and each is added once. An `$id` shared by two
 * different schemas is a programming error and stops the start.
 */
export function createValidatorFactory(): (
  externalSchemas: Record<string, unknown>,
) => FastifySchemaCompiler<unknown> {
  const bodyAjv = addFormats(new Ajv({ ...common, coerceTypes: false }));
  const textAjv = addFormats(new Ajv({ ...common, coerceTypes: "array" }));
  const added = new Map<string, string>();
  const compile: FastifySchemaCompiler<unknown> = ({ schema, httpPart }) =>
    (httpPart === "body" ? bodyAjv : textAjv).compile(schema as object);
  return (externalSchemas) => {
    for (const [id, schema] of Object.entries(externalSchemas)) {
      const text = JSON.stringify(schema);
      const known = added.get(id);
      if (known === text) continue;
      if (known !== undefined) throw new Error(`two different shared schemas have the $id '${id}'`);
      bodyAjv.addSchema(schema as object);
      textAjv.addSchema(schema as object);
      added.set(id, text);
    }
    return compile;
  };
}
