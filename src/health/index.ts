export { HealthRegistry } from './health-registry.js';
export type { DependencyReport, DependencyStatus, HealthReport, OverallStatus } from './health-registry.js';
