export { histogramQuantile } from './histogram-quantile.js';
export type { Bucket } from './histogram-quantile.js';
export type { RequestFigures } from './request-figures.js';
export { trafficPlugin } from './traffic-plugin.js';
export type { TrafficPluginOptions } from './traffic-plugin.js';
export { RequestHistory } from './request-history.js';
export type { RequestHistoryAnswer } from './request-history.js';
