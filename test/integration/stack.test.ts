/**
 * deploy/docker-stack.yml is accepted by a real swarm (the harness's): every service is created
 * with the intended mode, placement and read-only mounts. Images are not pulled (no registry
 * here), so tasks do not start; the stack definition is what is under test.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { missingTools, startSwarm, type TestSwarm } from '../harness/index.js';

const skip = missingTools(['root', 'dockerd', 'docker', 'busybox']);
const stackFile = path.resolve(import.meta.dirname, '../../deploy/docker-stack.yml');

interface ServiceSpec {
  Spec: {
    Name: string;
    Mode: { Global?: object; Replicated?: { Replicas: number } };
    TaskTemplate: {
      Placement?: { Constraints?: string[] };
      ContainerSpec: {
        Env?: string[];
        Mounts?: Array<{ Source: string; Target: string; ReadOnly?: boolean }>;
        Secrets?: Array<{ SecretName: string }>;
      };
    };
  };
}

describe.skipIf(skip)('the swarm stack', () => {
  let swarm: TestSwarm;
  beforeAll(async () => {
    swarm = await startSwarm();
    for (const [name, value] of [
      ['swarm_edge_database_url', 'postgres://edge:x@db:5432/edge'],
      ['swarm_edge_pg_password', 'x'],
      ['swarm_edge_feed_jwt_secret', 'y'.repeat(40)],
    ]) {
      await swarm.docker.createSecret({ Name: name, Data: Buffer.from(value!).toString('base64') });
    }
  });
  afterAll(async () => {
    await swarm?.destroy();
  });

  it('deploys with the router on managers, metrics everywhere and read-only host mounts', async () => {
    await swarm.cli(['stack', 'deploy', '--resolve-image', 'never', '-c', stackFile, 'edge']);
    const services = (await swarm.docker.listServices()) as unknown as ServiceSpec[];
    const byName = new Map(services.map((s) => [s.Spec.Name, s.Spec]));
    expect([...byName.keys()].sort()).toEqual(['edge_db', 'edge_metrics', 'edge_redis', 'edge_router', 'edge_traefik']);

    const router = byName.get('edge_router')!;
    expect(router.Mode.Global).toBeDefined();
    expect(router.TaskTemplate.Placement?.Constraints).toContain('node.role == manager');
    expect(router.TaskTemplate.ContainerSpec.Env).toEqual(
      expect.arrayContaining(['EDGE_ROLES=router', 'DATABASE_URL_FILE=/run/secrets/swarm_edge_database_url']),
    );
    const metrics = byName.get('edge_metrics')!;
    expect(metrics.Mode.Global).toBeDefined();
    expect(metrics.TaskTemplate.Placement?.Constraints ?? []).not.toContain('node.role == manager');
    const mounts = metrics.TaskTemplate.ContainerSpec.Mounts ?? [];
    for (const target of ['/var/run/docker.sock', '/host/proc', '/host/sys/fs/cgroup', '/host/root']) {
      expect(mounts.find((m) => m.Target === target)?.ReadOnly).toBe(true);
    }
    expect(metrics.TaskTemplate.ContainerSpec.Secrets?.map((s) => s.SecretName).sort()).toEqual([
      'swarm_edge_database_url',
      'swarm_edge_feed_jwt_secret',
    ]);
    expect(
      byName.get('edge_traefik')!.TaskTemplate.ContainerSpec.Mounts?.find((m) => m.Target === '/etc/traefik/dynamic')
        ?.ReadOnly,
    ).toBe(true);
  });
});
