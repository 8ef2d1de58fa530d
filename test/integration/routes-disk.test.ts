/**
 * The routes file on a filesystem that fills up: a real 64 KiB tmpfs, as an operator's small
 * volume would be. A publish that does not fit must fail, leave the last good file whole, and be
 * written completely once there is room again.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TraefikFileWriter } from '../../src/router/index.js';
import { STAGING_DIRECTORY } from '../../src/router/traefik-file-writer.js';
import { missingTools } from '../harness/index.js';

const skip = missingTools(['root']);

/** A document of about `bytes` bytes, valid JSON, with routes named r0, r1, … */
function document(bytes: number): Buffer {
  const routers: Record<string, { rule: string }> = {};
  for (let i = 0; JSON.stringify(routers).length < bytes; i++)
    routers[`r${i}`] = { rule: `Host(\`site-${i}.example.com\`)` };
  return Buffer.from(JSON.stringify({ http: { routers } }));
}

describe.skipIf(skip)('routes file on a full filesystem', () => {
  let mountPoint = '';
  let writer: TraefikFileWriter;

  beforeAll(async () => {
    mountPoint = mkdtempSync('/tmp/swarm-edge-tmpfs-');
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mountPoint]);
    writer = new TraefikFileWriter(mountPoint);
    await writer.init();
  });

  afterAll(async () => {
    await writer?.close();
    if (mountPoint) {
      try {
        execFileSync('umount', [mountPoint]);
      } finally {
        rmSync(mountPoint, { recursive: true, force: true });
      }
    }
  });

  it('never puts a partial file in place, and writes the whole file once there is room', async () => {
    const small = document(2_000);
    expect(await writer.write(small)).toBe(true);
    const before = readFileSync(writer.file);

    // 400 routes' worth: more than the 64 KiB filesystem holds.
    const large = document(90_000);
    await expect(writer.write(large)).rejects.toThrow(/space|ENOSPC|bytes instead/);
    expect(readFileSync(writer.file).equals(before)).toBe(true);
    expect(readdirSync(path.join(mountPoint, STAGING_DIRECTORY))).toEqual([]);
    // The same body is not taken as published: the next attempt writes again.
    await expect(writer.write(large)).rejects.toThrow();

    execFileSync('mount', ['-o', 'remount,size=1m', mountPoint]);
    expect(await writer.write(large)).toBe(true);
    const after = readFileSync(writer.file, 'utf8');
    const parsed = JSON.parse(after.slice(after.indexOf('\n') + 1)) as { http: { routers: Record<string, unknown> } };
    expect(Object.keys(parsed.http.routers).length).toBe(
      Object.keys((JSON.parse(large.toString()) as typeof parsed).http.routers).length,
    );
  });
});
