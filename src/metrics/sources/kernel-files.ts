/**
 * Reads small kernel files (cgroupfs, procfs) that are read again every tick. The descriptors
 * stay open and each read is one pread at offset 0, which makes the kernel generate the content
 * afresh: one syscall per file per tick instead of open, fstat, read and close.
 */
import { closeSync, openSync, readSync } from 'node:fs';

export class KernelFiles {
  private readonly fds = new Map<string, number>();
  private readonly buffer = Buffer.allocUnsafe(64 * 1024);

  /** The file's current content; throws like readFileSync when it cannot be read. */
  read(file: string): string {
    let fd = this.fds.get(file);
    if (fd === undefined) {
      fd = openSync(file, 'r');
      this.fds.set(file, fd);
    }
    try {
      const length = readSync(fd, this.buffer, 0, this.buffer.length, 0);
      return this.buffer.toString('latin1', 0, length);
    } catch (error) {
      // The cgroup or process went away: forget the descriptor, let the caller decide.
      this.close(file);
      throw error;
    }
  }

  /** Closes every descriptor under a directory (a container that went away). */
  closeUnder(directory: string): void {
    for (const file of [...this.fds.keys()]) if (file.startsWith(directory)) this.close(file);
  }

  closeAll(): void {
    for (const file of [...this.fds.keys()]) this.close(file);
  }

  get open(): number {
    return this.fds.size;
  }

  private close(file: string): void {
    const fd = this.fds.get(file);
    this.fds.delete(file);
    if (fd !== undefined) {
      try {
        closeSync(fd);
      } catch {
        // already closed
      }
    }
  }
}
