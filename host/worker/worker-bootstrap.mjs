// Worker entry: workers do not inherit the parent's loader hooks, so register tsx here
// before loading the TypeScript worker.
import { register } from 'tsx/esm/api';

register();
await import('./worker-main.ts');
