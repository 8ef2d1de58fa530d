export { createDockerClient, withTimeout } from './docker-client.js';
export { createDockerProbe, DOCKER } from './docker-probe.js';
