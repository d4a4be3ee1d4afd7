#!/usr/bin/env node
// The wasmlet CLI: loads the TypeScript sources through tsx.
import { register } from 'tsx/esm/api';

register();
await import('../host/cli.ts');
