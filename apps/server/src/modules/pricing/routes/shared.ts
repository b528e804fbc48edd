import { Type } from "typebox";

/** A string enum (`{enum: [...]}`), so OpenAPI lists the values and TypeScript knows them. */
export function oneOf<const T extends readonly string[]>(values: T, options: { description?: string } = {}) {
  return Type.Enum<[...T]>([...values], options);
}
