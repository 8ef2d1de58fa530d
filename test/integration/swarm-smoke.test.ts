import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { missingTools, startSwarm, waitFor, type TestSwarm } from '../harness/index.js';

const skip = missingTools(['root', 'dockerd', 'docker', 'busybox']);

describe.skipIf(skip)('the harness swarm', () => {
  let swarm: TestSwarm;
  beforeAll(async () => {
    swarm = await startSwarm();
  });
  afterAll(async () => {
    await swarm?.destroy();
  });

  it('is a single-node swarm of its own', async () => {
    const nodes = await swarm.docker.listNodes();
    expect(nodes).toHaveLength(1);
    expect(nodes[0]).toMatchObject({ Spec: { Role: 'manager' }, Status: { State: 'ready' } });
  });

  it('runs a labelled service from the local test image', async () => {
    const service = await swarm.docker.createService({
      Name: 'smoke',
      Labels: { 'cloud.obiente.deployment_id': 'dep-smoke' },
      TaskTemplate: { ContainerSpec: { Image: swarm.image } },
      Mode: { Replicated: { Replicas: 1 } },
    });
    await waitFor(
      'the smoke task to run',
      async () => {
        const tasks = await swarm.docker.listTasks({ filters: { service: ['smoke'] } });
        return (tasks as Array<{ Status?: { State?: string } }>).some((t) => t.Status?.State === 'running');
      },
      60_000,
      250,
    );
    const inspected = (await service.inspect()) as { Spec: { Labels: Record<string, string> } };
    expect(inspected.Spec.Labels['cloud.obiente.deployment_id']).toBe('dep-smoke');
  });
});
