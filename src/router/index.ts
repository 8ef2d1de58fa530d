export { RedisPublisher, toKeyValues } from './redis-publisher.js';
export { ROUTES, RoutePublisher } from './route-publisher.js';
export type {
  PublishedState,
  PublisherSources,
  PublishingState,
  RouteCounts,
  RouterTelemetry,
} from './route-publisher.js';
export { MIDDLEWARE_TYPES, normalizeHost, validateRow } from './route-validation.js';
export type { Middlewares, Route, Validation } from './route-validation.js';
export { ROUTING_TABLE, RoutingTable } from './routing-table.js';
export type { RoutingRow } from './routing-table.js';
export { ROUTES_FILE, TraefikFileWriter } from './traefik-file-writer.js';
export {
  ERROR_PAGE_PATH,
  renderTraefikConfig,
  routeName,
  TraefikRenderer,
  UNAVAILABLE_PATH,
} from './traefik-config.js';
export type { DynamicConfig, RenderOptions, RenderResult, RouteState, RouteStatus } from './traefik-config.js';
export { DEFAULT_HOST_POLICY, reservedFromList } from './host-policy.js';
export type { HostPolicy, HostSharing } from './host-policy.js';
export { routerPlugin } from './router-plugin.js';
