import { SerializerSelector } from "@fastify/fast-json-stringify-compiler";
import type { FastifyInstance } from "fastify";

type Serialize = (data: unknown) => string;
type RouteSchema = { schema: unknown; method: string; url: string; httpStatus: string };
type SerializerFactory = (
  externalSchemas: unknown,
  serializerOptions: unknown,
) => (route: RouteSchema) => Serialize;

export interface LazySerializers {
  /** For Fastify's `schemaController.compilersFactory.buildSerializer`. */
  factory: SerializerFactory;
  /** Compiles every serializer not compiled yet (tests: a schema fast-json-stringify refuses throws). */
  compileAll(): number;
}

/**
 * Fastify's own response serializers (fast-json-stringify), each compiled when its route first
 * answers with that status rather than all at start: compiling some 150 of them (each re-reading
 * the shared schemas) was a quarter of a later start, and a process rarely serves every route.
 * `compileAll` lets a test compile all of them, so a schema that cannot compile is found there.
 */
export function createLazySerializers(): LazySerializers {
  const buildSerializerFactory = SerializerSelector();
  const pending = new Set<() => Serialize>();
  const factory: SerializerFactory = (externalSchemas, serializerOptions) => {
    const compile = buildSerializerFactory(
      externalSchemas as never,
      serializerOptions as never,
    ) as unknown as (route: RouteSchema) => Serialize;
    return (route) => {
      let serialize: Serialize | undefined;
      const ensure = () => {
        if (!serialize) {
          serialize = compile(route);
          pending.delete(ensure);
        }
        return serialize;
      };
      pending.add(ensure);
      return (data) => (serialize ?? ensure())(data);
    };
  };
  return {
    factory,
    compileAll: () => {
      const count = pending.size;
      for (const ensure of [...pending]) ensure();
      return count;
    },
  };
}

const byApp = new WeakMap<FastifyInstance, LazySerializers>();

export function registerLazySerializers(app: FastifyInstance, serializers: LazySerializers): void {
  byApp.set(app, serializers);
}

/** Compiles every response serializer of the app that has not run yet; answers how many. */
export function compileEverySerializer(app: FastifyInstance): number {
  return byApp.get(app)?.compileAll() ?? 0;
}
