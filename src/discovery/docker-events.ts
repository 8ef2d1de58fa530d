/**
 * Docker's event stream as a long-lived subscription: newline-delimited JSON parsed line by line
 * (a line past 1 MB is dropped, not buffered), reconnected with backoff when it ends or fails.
 * Each event is handed over as parsed JSON: untrusted input, which the consumer validates.
 */
import type Docker from 'dockerode';
import { backoffDelay, failureLogLevel } from '../lib/backoff.js';
import type { Logger } from '../lib/logger.js';
import { withTimeout } from '../lib/with-timeout.js';

const MAX_LINE_BYTES = 1_000_000;
const CONNECT_TIMEOUT_MS = 10_000;

type EventStream = NodeJS.ReadableStream & { destroy?: () => void };

/** Docker's event time (`timeNano`) is the daemon's wall clock; out of range: no delivery figure. */
const LONGEST_DELIVERY_MS = 3_600_000;
/** The daemon and this process read the same clock; allow for rounding, not for skew. */
const CLOCK_SLACK_MS = 1_000;

/** From an event's `timeNano` to `nowMs` (Date.now()), or undefined when it is not a plausible timestamp. */
export function deliveryOf(timeNano: unknown, nowMs: number): number | undefined {
  if (typeof timeNano !== 'number' || !Number.isFinite(timeNano) || timeNano <= 0) return undefined;
  const delivery = nowMs - timeNano / 1e6;
  if (delivery < -CLOCK_SLACK_MS || delivery > LONGEST_DELIVERY_MS) return undefined;
  return Math.max(0, delivery);
}

/** A `data` handler that calls `onLine` with each complete, non-empty line. */
export function splitLines(onLine: (line: string) => void): (chunk: Buffer) => void {
  let buffer = '';
  return (chunk) => {
    buffer += chunk.toString('utf8');
    let newline: number;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, newline).trim();
      buffer = buffer.slice(newline + 1);
      if (line) onLine(line);
    }
    // A single event is small; a runaway line without newline is dropped rather than kept.
    if (buffer.length > MAX_LINE_BYTES) buffer = '';
  };
}

export class DockerEventStream {
  private stream: EventStream | undefined;
  private timer: NodeJS.Timeout | undefined;
  private attempt = 0;
  private stopped = true;
  private readonly s = { connects: 0, reconnects: 0, events: 0, unparsable: 0 };

  constructor(
    private readonly options: { readonly name: string; readonly filters: Record<string, string[]> },
    private readonly deps: {
      docker: Pick<Docker, 'getEvents'>;
      log: Logger;
      onEvent: (event: unknown) => void;
      /** Called on every (re)connection: events may have been missed while the stream was down. */
      onConnect?: () => void;
    },
  ) {}

  stats() {
    return { connected: this.stream !== undefined, ...this.s };
  }

  start(): void {
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    const stream = this.stream;
    this.stream = undefined;
    stream?.destroy?.();
  }

  private connect(): void {
    if (this.stopped) return;
    withTimeout(
      this.deps.docker.getEvents({ filters: this.options.filters }) as Promise<EventStream>,
      CONNECT_TIMEOUT_MS,
      `docker events (${this.options.name})`,
    )
      .then((stream) => {
        if (this.stopped) return stream.destroy?.();
        this.stream = stream;
        this.attempt = 0;
        this.s.connects += 1;
        stream.on(
          'data',
          splitLines((line) => this.onLine(line)),
        );
        const lost = (reason: Error) => {
          if (this.stream !== stream) return;
          this.stream = undefined;
          this.retry(reason);
        };
        stream.on('end', () => lost(new Error('events stream ended')));
        stream.on('close', () => lost(new Error('events stream closed')));
        stream.on('error', (error: Error) => lost(error));
        this.deps.onConnect?.();
      })
      .catch((error: unknown) => this.retry(error));
  }

  private onLine(line: string): void {
    let event: unknown;
    try {
      event = JSON.parse(line);
    } catch {
      this.s.unparsable += 1;
      this.deps.log.warn({ line: line.slice(0, 200) }, 'unparsable docker event ignored');
      return;
    }
    this.s.events += 1;
    try {
      this.deps.onEvent(event);
    } catch (error) {
      // Nothing an event holds may reach the stream's emitter, where it would take the process down.
      this.deps.log.error({ err: error }, `docker event handler failed (${this.options.name})`);
    }
  }

  private retry(reason: unknown): void {
    if (this.stopped) return;
    const delay = backoffDelay({ baseMs: 250, maxMs: 15_000 }, this.attempt);
    this.attempt += 1;
    this.s.reconnects += 1;
    this.deps.log[failureLogLevel(this.attempt)](
      { reason: reason instanceof Error ? reason.message : String(reason), retryInMs: delay },
      `docker events stream (${this.options.name}) lost; reconnecting`,
    );
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
    this.timer.unref();
  }
}
