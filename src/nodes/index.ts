export { nodePlugin } from './node-plugin.js';
export type { NodePluginOptions } from './node-plugin.js';
export { HostSampler } from './host-sampler.js';
export type { DiskSpace, HostProblem, HostSample } from './host-sampler.js';
export { NodeHistory } from './node-history.js';
export type { NodeHistoryAnswer } from './node-history.js';
