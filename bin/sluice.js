#!/usr/bin/env node
// Launcher for the `sluice` command. A published package runs the compiled JavaScript in
// dist/; a source checkout (after `npm ci`) runs the TypeScript directly through Node's
// type stripping, so no build step stands between `npm ci` and `npx sluice`.
import { existsSync } from 'node:fs';

const compiled = new URL('../dist/cli/main.js', import.meta.url);
const entry = existsSync(compiled) ? compiled : new URL('../src/cli/main.ts', import.meta.url);
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
