import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  unlinkSync,
  watch,
  writeFileSync,
} from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ROUTES_FILE, STAGING_DIRECTORY, TraefikFileWriter, writeFully } from './traefik-file-writer.js';

const dirs: string[] = [];
const writers: TraefikFileWriter[] = [];
afterEach(async () => {
  await Promise.all(writers.splice(0).map((writer) => writer.close()));
  dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true }));
});

function newDir(): string {
  const dir = mkdtempSync('/tmp/swarm-edge-writer-');
  dirs.push(dir);
  return dir;
}

async function writerIn(dir: string): Promise<TraefikFileWriter> {
  const writer = new TraefikFileWriter(dir);
  writers.push(writer);
  await writer.init();
  return writer;
}

const body = (text: string) => Buffer.from(text);
const contents = (writer: TraefikFileWriter) => readFileSync(writer.file, 'utf8').split('\n').slice(1, -1).join('\n');
const settle = () => new Promise((resolve) => setTimeout(resolve, 100));

describe('TraefikFileWriter', () => {
  it('replaces the file and leaves nothing else in the directory but the empty staging directory', async () => {
    const dir = newDir();
    const writer = await writerIn(dir);
    for (const text of ['{"a": 1}', '{"a": 2}', '{"a": 3}']) expect(await writer.write(body(text))).toBe(true);
    await writer.idle();
    expect(contents(writer)).toBe('{"a": 3}');
    expect(readdirSync(dir).sort()).toEqual([STAGING_DIRECTORY, ROUTES_FILE]);
    expect(readdirSync(path.join(dir, STAGING_DIRECTORY))).toEqual([]);
  });

  it('shows the watched directory one event per publish, for the routes file only', async () => {
    // Traefik re-parses the whole directory on every event of its (non-recursive) watcher.
    const dir = newDir();
    const writer = await writerIn(dir);
    await writer.write(body('{"a": 0}'));
    await settle();
    const events: string[] = [];
    const watcher = watch(dir, (_type, name) => events.push(String(name)));
    try {
      for (let i = 1; i <= 3; i++) await writer.write(body(`{"a": ${i}}`));
      await writer.idle();
      await settle();
    } finally {
      watcher.close();
    }
    expect(events.length).toBeGreaterThan(0);
    expect(events.length).toBeLessThanOrEqual(3);
    expect(new Set(events)).toEqual(new Set([ROUTES_FILE]));
  });

  it('does not rewrite an unchanged body, even after a restart', async () => {
    const dir = newDir();
    const writer = await writerIn(dir);
    await writer.write(body('{"a": 1}'));
    expect(await writer.write(body('{"a": 1}'))).toBe(false);
    const restarted = await writerIn(dir);
    expect(await restarted.write(body('{"a": 1}'))).toBe(false);
  });

  it('refuses an empty body and keeps the last file', async () => {
    const writer = await writerIn(newDir());
    await writer.write(body('{"a": 1}'));
    await expect(writer.write(Buffer.alloc(0))).rejects.toThrow(/empty/);
    expect(contents(writer)).toBe('{"a": 1}');
  });

  it('removes what a crash left at start, and recreates a staging directory removed while running', async () => {
    const dir = newDir();
    const writer = await writerIn(dir);
    await writer.write(body('{"a": 1}'));
    await writer.close();
    writeFileSync(path.join(dir, STAGING_DIRECTORY, `${ROUTES_FILE}.tmp`), '{"half');
    writeFileSync(path.join(dir, `${ROUTES_FILE}.tmp`), '{"half');
    const restarted = await writerIn(dir);
    expect(readdirSync(dir).sort()).toEqual([STAGING_DIRECTORY, ROUTES_FILE]);
    expect(readdirSync(path.join(dir, STAGING_DIRECTORY))).toEqual([]);
    rmSync(path.join(dir, STAGING_DIRECTORY), { recursive: true });
    expect(await restarted.write(body('{"a": 2}'))).toBe(true);
    expect(contents(restarted)).toBe('{"a": 2}');
    expect(existsSync(path.join(dir, STAGING_DIRECTORY))).toBe(true);
  });

  it('restores a routes file deleted or truncated by hand on the next publish of the same body', async () => {
    const writer = await writerIn(newDir());
    await writer.write(body('{"a": 1}'));
    truncateSync(writer.file, 20);
    expect(await writer.write(body('{"a": 1}'))).toBe(true);
    expect(contents(writer)).toBe('{"a": 1}');
    unlinkSync(writer.file);
    expect(await writer.write(body('{"a": 1}'))).toBe(true);
    expect(contents(writer)).toBe('{"a": 1}');
    expect(writer.stats().restored).toBe(2);
    expect(await writer.write(body('{"a": 1}'))).toBe(false);
  });
  it("puts the file in place before the directory's fsync, and the next rename waits for that fsync", async () => {
    const dir = newDir();
    const syncs: Array<() => void> = [];
    const writer = new TraefikFileWriter(dir, {
      syncDirectory: () => new Promise<void>((resolve) => syncs.push(resolve)),
    });
    writers.push(writer);
    await writer.init();
    expect(await writer.write(body('{"a": 1}'))).toBe(true);
    expect(contents(writer)).toBe('{"a": 1}');
    expect(syncs).toHaveLength(1);

    const second = writer.write(body('{"a": 2}'));
    await settle();
    expect(contents(writer)).toBe('{"a": 1}');
    syncs[0]!();
    expect(await second).toBe(true);
    expect(contents(writer)).toBe('{"a": 2}');
    syncs[1]!();
    await writer.idle();
  });

  it("fails the next write when the directory's fsync failed, and writes the same body again after", async () => {
    const dir = newDir();
    let failures = 1;
    const writer = new TraefikFileWriter(dir, {
      syncDirectory: () => (failures-- > 0 ? Promise.reject(new Error('EIO: i/o error, fsync')) : Promise.resolve()),
    });
    writers.push(writer);
    await writer.init();
    expect(await writer.write(body('{"a": 1}'))).toBe(true);
    await writer.idle();
    await expect(writer.write(body('{"a": 1}'))).rejects.toThrow(/EIO/);
    // Not "unchanged": the rename the failed fsync followed may not be durable.
    expect(await writer.write(body('{"a": 1}'))).toBe(true);
    await writer.idle();
    expect(await writer.write(body('{"a": 1}'))).toBe(false);
  });
});

describe('writeFully', () => {
  /** A handle whose writev takes at most `chunk` bytes per call, as a filling disk does. */
  function shortHandle(chunk: number, capacity = Infinity) {
    const written: Buffer[] = [];
    let total = 0;
    const handle = {
      writev: (buffers: Buffer[]) => {
        const room = Math.max(0, Math.min(chunk, capacity - total));
        const all = Buffer.concat(buffers).subarray(0, room);
        written.push(all);
        total += all.length;
        return Promise.resolve({ bytesWritten: all.length, buffers });
      },
    } as unknown as FileHandle;
    return { handle, written: () => Buffer.concat(written).toString() };
  }

  it('writes every byte when writev takes only part of the buffers each time', async () => {
    const { handle, written } = shortHandle(3);
    await writeFully(handle, [body('# head\n'), body('{"a": 12345}'), body('\n')]);
    expect(written()).toBe('# head\n{"a": 12345}\n');
  });

  it('fails instead of returning when the disk takes no more bytes', async () => {
    const { handle, written } = shortHandle(5, 12);
    await expect(writeFully(handle, [body('0123456789'), body('abcdefghij')])).rejects.toThrow(/no space left/);
    expect(written()).toBe('0123456789ab');
  });
});
