/**
 * Where freshly rendered routes put their bytes until the next document is assembled: large
 * buffers filled one text after the other, rather than a Buffer object per route. The assembler
 * copies the bytes into the document and points the routes there, so that a chunk no route
 * points into any more is freed as a whole.
 */
export class ByteArena {
  private chunk: Buffer = Buffer.alloc(0);
  private at = 0;

  constructor(private readonly chunkSize = 1 << 20) {}

  /** Appends `text` as UTF-8; returns the chunk it is in, where it starts and its length in bytes. */
  write(text: string): { bytes: Buffer; start: number; length: number } {
    // UTF-8 takes at most 3 bytes per UTF-16 code unit.
    if (this.chunk.length - this.at < text.length * 3) {
      this.chunk = Buffer.allocUnsafeSlow(Math.max(this.chunkSize, text.length * 3));
      this.at = 0;
    }
    const start = this.at;
    const length = this.chunk.write(text, start);
    this.at += length;
    return { bytes: this.chunk, start, length };
  }
}
