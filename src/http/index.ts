export { registerErrorHandling } from './error-handler.js';
export { Errors } from './errors.js';
export { registerHealthRoutes, registerOpenApiRoute } from './health-routes.js';
export { registerMetricsRoutes } from './metrics-routes.js';
export { registerTraefikRoutes } from './traefik-routes.js';
export { registerFeedRoutes } from './feed-routes.js';
export { registerObservabilityRoutes } from './observability-routes.js';
export { registerUiRoutes } from './ui-routes.js';
