/**
 * The default component registry: every built-in source, operator and sink. `sluice list`,
 * `schema`, the generated docs and library users use it; `sluice run` and `lint` load only the
 * spec modules a pipeline file names (`registryFor` in `component-modules.ts`).
 *
 * The one list of built-in spec modules is `COMPONENT_MODULES`; this registry loads all of them.
 * Every export of a spec module that is a component spec is registered, so adding a spec to a
 * module's exports (and its name to that module's line) is all it takes.
 */

import { COMPONENT_MODULES } from './component-modules.ts';
import { Registry, specsIn } from './spec/registry.ts';

const modules = await Promise.all(COMPONENT_MODULES.map((m) => m.load()));

/**
 * Every built-in component.
 *
 * @example
 * defaultRegistry.get('source', 'file')?.summary;
 */
export const defaultRegistry: Registry = new Registry().add(...modules.flatMap((m) => specsIn(m)));
