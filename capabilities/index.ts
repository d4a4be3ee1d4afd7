/** The capabilities part: built-in providers for HTTP server, key-value and logging. */
import type { Logger } from 'pino';
import { HTTP_SERVER, KEY_VALUE, LOGGING, type CapabilityProvider } from '../host/index.ts';
import { HttpServerProvider } from './http-server/provider.ts';
import { KeyValueProvider } from './keyvalue/provider.ts';
import { LoggingProvider } from './logging/provider.ts';

export { HttpServerProvider } from './http-server/provider.ts';
export { parseHttpServerOptions, type HttpServerOptions } from './http-server/options.ts';
export { KeyValueProvider, parseKeyValueProviderOptions, KEY_VALUE_OPERATIONS, type KeyValueProviderOptions, type KeyValueProviderOptionsInput } from './keyvalue/provider.ts';
export { MemoryKeyValueStore, memoryBackend } from './keyvalue/memory-store.ts';
export { SharedKeyValueTable, type SharedTableOptions } from './keyvalue/shared-table.ts';
export { RedisKeyValueStore, redisBackend } from './keyvalue/redis-store.ts';
export { NatsKeyValueStore, natsBackend, type NatsBackendOptions } from './keyvalue/nats-store.ts';
export { selectBackend, type KeyValueStore, type KeyValueBackendFactory, type KeyValueBackendRegistry } from './keyvalue/store.ts';
export { runKeyValueConformance } from './keyvalue/conformance.ts';
export { LoggingProvider, WASCC_LOG_LEVELS } from './logging/provider.ts';
export * from './errors.ts';

/** Built-in provider factories by canonical contract id, as `wasmlet up` uses them. */
export const builtinProviders: Record<string, (options: Record<string, unknown>, logger: Logger) => CapabilityProvider> = {
  [HTTP_SERVER]: (options) => new HttpServerProvider(options),
  [KEY_VALUE]: (options) => new KeyValueProvider(options),
  [LOGGING]: () => new LoggingProvider(),
};
