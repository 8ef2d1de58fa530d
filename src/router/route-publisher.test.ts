import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { emptyTopology } from '../discovery/index.js';
import { RoutePublisher } from './route-publisher.js';
import type { RoutingRow } from './routing-table.js';
import { TraefikFileWriter } from './traefik-file-writer.js';

const options = { labelPrefix: 'p', entryPoints: { http: 'web', https: 'websecure' }, defaultCertResolver: 'le', network: undefined, fallbackUrl: 'http://e:1' };
const telemetry = { published: () => undefined, rowRejected: () => undefined, publishFailed: () => undefined };
const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

function setup(sources: { rows: readonly RoutingRow[] | undefined; fresh: boolean; synced: boolean }, file: Pick<TraefikFileWriter, 'write' | 'file'>) {
  return new RoutePublisher(options, {
    sources: { rows: () => ({ rows: sources.rows, fresh: sources.fresh }), topology: () => ({ topology: emptyTopology(), synced: sources.synced }) },
    file: file as TraefikFileWriter,
    redis: undefined,
    telemetry,
    log: pino({ level: 'silent' }),
  });
}

describe('RoutePublisher', () => {
  it('publishes nothing before the table and the swarm have both been read', async () => {
    const writes: Buffer[] = [];
    const file = { file: 'x', write: (body: Buffer) => Promise.resolve(writes.push(body) > 0) };
    const publisher = setup({ rows: undefined, fresh: false, synced: true }, file);
    publisher.changed(performance.now());
    await publisher.idle();
    expect(writes).toEqual([]);
    expect(publisher.state().waitingFor).toMatch(/routing table/);
  });

  it('keeps the last good file while the routing table cannot be read', async () => {
    const dir = mkdtempSync('/tmp/swarm-edge-publisher-');
    dirs.push(dir);
    const writer = new TraefikFileWriter(dir);
    await writer.init();
    writeFileSync(writer.file, 'last good');
    const publisher = setup({ rows: [], fresh: false, synced: true }, writer);
    publisher.changed(performance.now());
    await publisher.idle();
    expect(readFileSync(path.join(dir, 'swarm-edge.yml'), 'utf8')).toBe('last good');
  });

  it('survives a failing write without an unhandled rejection and retries', async () => {
    let attempts = 0;
    const file = { file: 'x', write: () => (++attempts === 1 ? Promise.reject(new Error('ENOSPC')) : Promise.resolve(true)) };
    const publisher = setup({ rows: [], fresh: true, synced: true }, file);
    publisher.changed(performance.now());
    await publisher.idle();
    expect(attempts).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 2_300));
    await publisher.idle();
    expect(attempts).toBe(2);
  });
});
