import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TraefikFileWriter } from './traefik-file-writer.js';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

async function writerInNewDir(): Promise<{ writer: TraefikFileWriter; dir: string }> {
  const dir = mkdtempSync('/tmp/swarm-edge-writer-');
  dirs.push(dir);
  const writer = new TraefikFileWriter(dir);
  await writer.init();
  return { writer, dir };
}

const body = (text: string) => Buffer.from(text);
const contents = (writer: TraefikFileWriter) => readFileSync(writer.file, 'utf8').split('\n').slice(1, -1).join('\n');

describe('TraefikFileWriter', () => {
  it('replaces the file, leaving neither the temporary file nor the replaced one behind', async () => {
    const { writer, dir } = await writerInNewDir();
    for (const text of ['{"a": 1}', '{"a": 2}', '{"a": 3}']) expect(await writer.write(body(text))).toBe(true);
    await writer.idle();
    expect(contents(writer)).toBe('{"a": 3}');
    expect(readdirSync(dir)).toEqual(['swarm-edge.yml']);
  });

  it('does not rewrite an unchanged body, even after a restart', async () => {
    const { writer, dir } = await writerInNewDir();
    await writer.write(body('{"a": 1}'));
    expect(await writer.write(body('{"a": 1}'))).toBe(false);
    const restarted = new TraefikFileWriter(dir);
    await restarted.init();
    expect(await restarted.write(body('{"a": 1}'))).toBe(false);
  });

  it('refuses an empty body and keeps the last file', async () => {
    const { writer } = await writerInNewDir();
    await writer.write(body('{"a": 1}'));
    await expect(writer.write(Buffer.alloc(0))).rejects.toThrow(/empty/);
    expect(contents(writer)).toBe('{"a": 1}');
  });

  it('writes over a replaced file that a failed unlink left behind', async () => {
    const { writer, dir } = await writerInNewDir();
    await writer.write(body('{"a": 1}'));
    await writer.idle();
    writeFileSync(path.join(dir, 'swarm-edge.yml.prev'), 'stale');
    expect(await writer.write(body('{"a": 2}'))).toBe(true);
    await writer.idle();
    expect(contents(writer)).toBe('{"a": 2}');
    expect(existsSync(path.join(dir, 'swarm-edge.yml.prev'))).toBe(false);
  });
});
