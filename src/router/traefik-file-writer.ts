/**
 * Writes the routes file for Traefik's file provider, atomically: the body goes to a temporary
 * name in the same directory (".tmp": a suffix Traefik ignores), is fsynced, then renamed over the
 * real file, and the directory is fsynced. A reader sees the old file or the new one, never a
 * partial or empty one (Traefik applies an empty file as "no routes"). An unchanged body is not
 * written at all.
 */
import { open, readFile, rename, mkdir, unlink } from 'node:fs/promises';
import path from 'node:path';

export const ROUTES_FILE = 'swarm-edge.yml';

export class TraefikFileWriter {
  private lastBody: string | undefined;
  readonly file: string;
  private readonly tmp: string;

  constructor(private readonly directory: string) {
    this.file = path.join(directory, ROUTES_FILE);
    this.tmp = `${this.file}.tmp`;
  }

  /** Reads what a previous run left, so a restart does not rewrite an identical file. */
  async init(): Promise<void> {
    await mkdir(this.directory, { recursive: true });
    this.lastBody = await readFile(this.file, 'utf8').catch(() => undefined);
    await unlink(this.tmp).catch(() => undefined);
  }

  /** Returns false when the body is what the file already holds. */
  async write(body: string): Promise<boolean> {
    if (body.length === 0) throw new Error('refusing to write an empty routes file');
    if (body === this.lastBody) return false;
    const handle = await open(this.tmp, 'w', 0o644);
    try {
      await handle.writeFile(body, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(this.tmp, this.file);
    await syncDirectory(this.directory);
    this.lastBody = body;
    return true;
  }
}

async function syncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
