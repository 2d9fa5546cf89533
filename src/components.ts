/**
 * The default component registry: every built-in source, operator and sink. `sluice run`,
 * `lint`, `schema`, `list` and the generated docs use it.
 *
 * Each spec module is listed once below; every export of it that is a component spec is
 * registered, so adding a spec to a module's exports is all it takes — and a line in
 * `component-modules.ts`, which `sluice run` uses to load only the modules a pipeline names
 * (a test checks that the two agree).
 */

import * as blackholeSpecs from './connectors/blackhole/spec.ts';
import * as fileSpecs from './connectors/file/spec.ts';
import * as generateSpecs from './connectors/generate/spec.ts';
import * as kafkaSpecs from './connectors/kafka/spec.ts';
import * as postgresSpecs from './connectors/postgres/spec.ts';
import * as redisSpecs from './connectors/redis/spec.ts';
import * as stdioSpecs from './connectors/stdio/spec.ts';
import * as exprSpecs from './expr/spec.ts';
import * as operatorSpecs from './operators/spec.ts';
import { Registry, specsIn } from './spec/registry.ts';
import * as timeSpecs from './time/spec.ts';

/**
 * Every built-in component.
 *
 * @example
 * defaultRegistry.get('source', 'file')?.summary;
 */
export const defaultRegistry: Registry = new Registry().add(
  ...[
    fileSpecs,
    generateSpecs,
    kafkaSpecs,
    postgresSpecs,
    redisSpecs,
    blackholeSpecs,
    stdioSpecs,
    operatorSpecs,
    exprSpecs,
    timeSpecs,
  ].flatMap((m) => specsIn(m)),
);
