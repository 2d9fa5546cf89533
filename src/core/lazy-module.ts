/**
 * Synchronous loading of a module on first use, for code that sits on every run's start-up path
 * but needs a heavy module only for some configurations (the `avro` and `protobuf` formats load
 * `avsc` and `protobufjs`, some 60 modules, which a CSV or JSON Lines run never calls).
 */
import { createRequire } from 'node:module';

/**
 * A loader of module `path` (relative to `from`, the caller's `import.meta.url`, written with its
 * `.ts` extension as in an `import`): the first call loads it with `require` — Node loads an ES
 * module synchronously that way when it has no top-level `await` — and every call returns the
 * same namespace object. From compiled JavaScript (`dist/`, where `from` ends in `.js`) it loads
 * the `.js` file of the same name.
 *
 * Type it with the module's own type, so that a renamed export fails the type check:
 *
 * @example
 * const protobuf = lazyModule<typeof import('./protobuf-file.ts')>(import.meta.url, './protobuf-file.ts');
 * protobuf().protobufFileDecoder; // loaded now, not when the importing module was
 */
export function lazyModule<T>(from: string, path: string): () => T {
  let loaded: T | undefined;
  return () => {
    if (loaded === undefined) {
      const file = from.endsWith('.js') ? path.replace(/\.ts$/, '.js') : path;
      loaded = createRequire(from)(file) as T;
    }
    return loaded;
  };
}
