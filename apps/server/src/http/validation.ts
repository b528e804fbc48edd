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
  const bodyAjv = addFormats(new Ajv({ ...common, coerceTypes: false }));
  const textAjv = addFormats(new Ajv({ ...common, coerceTypes: "array" }));
  for (const schema of Object.values(externalSchemas)) {
    bodyAjv.addSchema(schema as object);
    textAjv.addSchema(schema as object);
  }
  return ({ schema, httpPart }) => (httpPart === "body" ? bodyAjv : textAjv).compile(schema as object);
}
