// Entry of a WASI program's dedicated worker: register tsx, then load the TypeScript runner.
import { register } from 'tsx/esm/api';

register();
await import('./wasi-worker.ts');
