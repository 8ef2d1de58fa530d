export { createDockerClient, withTimeout } from './docker-client.js';
export { createDockerProbe, DOCKER } from './docker-probe.js';
export { SwarmWatcher } from './swarm-watcher.js';
export type {
  DockerApi,
  HintedStart,
  StartListener,
  SwarmWatcherOptions,
  SwarmWatcherStats,
  TopologyListener,
} from './swarm-watcher.js';
export { emptyTopology, parseNode, parseService, parseTask } from './topology.js';
export type { PublishedPort, SwarmNode, SwarmService, SwarmTask, TaskAddress, Topology } from './topology.js';
export { deploymentsOfContainers, LocationsWriter } from './locations-writer.js';
