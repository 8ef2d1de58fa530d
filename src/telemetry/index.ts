export { createTelemetry } from './telemetry.js';
export type { Telemetry } from './telemetry.js';
