/** The capabilities part: built-in providers for HTTP server, key-value, logging, messaging, HTTP client and extras. */
import type { Logger } from 'pino';
import { EXTRAS, HTTP_CLIENT, HTTP_SERVER, KEY_VALUE, LOGGING, MESSAGING, type CapabilityProvider } from '../host/index.ts';
import { MessagingProvider } from './messaging/provider.ts';
import { ExtrasProvider } from './extras/provider.ts';
import { HttpClientProvider } from './httpclient/provider.ts';
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
export { ExtrasProvider } from './extras/provider.ts';
export { EXTRAS_OPERATIONS, readExtrasReply } from './extras/codec.ts';
export { runExtrasConformance, EXTRAS_REQUESTS } from './extras/conformance.ts';
export { HttpClientProvider, parseHttpClientProviderOptions, OP_PERFORM_REQUEST, type HttpClientProviderOptions, type HttpClientProviderOptionsInput } from './httpclient/provider.ts';
export { runHttpClientConformance, performRequest } from './httpclient/conformance.ts';
export { MessagingProvider, parseMessagingProviderOptions, type MessagingProviderOptions, type MessagingProviderOptionsInput } from './messaging/provider.ts';
export { InProcessBroker, BrokerRequestError, type MessageBroker, type BrokerMessage, type BrokerSubscription, type MessageListener } from './messaging/broker.ts';
export { NatsBroker } from './messaging/nats-broker.ts';
export { OP_PUBLISH, OP_REQUEST, OP_DELIVER_MESSAGE, encodeDelivery } from './messaging/codec.ts';
export { runMessagingConformance, publishPayload, requestPayload } from './messaging/conformance.ts';
export { directHarness, recordingContext, type ProviderHarness, type ActorInvocation, type ActorResponder } from './harness.ts';
export * from './errors.ts';

/** Built-in provider factories by canonical contract id, as `wasmlet up` uses them. */
export const builtinProviders: Record<string, (options: Record<string, unknown>, logger: Logger) => CapabilityProvider> = {
  [HTTP_SERVER]: (options) => new HttpServerProvider(options),
  [KEY_VALUE]: (options) => new KeyValueProvider(options),
  [LOGGING]: () => new LoggingProvider(),
  [MESSAGING]: (options) => new MessagingProvider(options),
  [EXTRAS]: () => new ExtrasProvider(),
  [HTTP_CLIENT]: (options) => new HttpClientProvider(options),
};
