/**
 * The observers of bench/swarm-scale.ts, in a process of their own: the routes file read every
 * 20 ms, every task listed every 100 ms, and the daemon's container `start` and `die` events.
 * In the router's process they parsed a task list of 900+ tasks ten times a second on the
 * router's event loop (stalls of 1.5–2.8 s at 450 × 2, bench/README.md), so the router's path to
 * the file was timed with the bench's own work in it.
 *
 * Forked by swarm-scale.ts with BENCH_OBSERVE_SOCKET (the daemon) and BENCH_OBSERVE_FILE (the
 * routes file). Messages, as `ObserverMessage` and `ObserverCommand` below.
 */
import Docker from 'dockerode';
import { fileIps, ipOf, type TaskJson } from './scale-tasks.js';

export interface Seen {
  service: string;
  ip: string | undefined;
  container: string | undefined;
  /** The first listing that showed the task running (when that listing was asked). */
  runningAt?: number;
  /** When the task's agent recorded `running` (its status timestamp). */
  runningStamp?: number;
  shutdownAt?: number;
}

/**
 * An address's presence in the file: the first read that held it, the first read after that which
 * did not, and how often it came back after leaving (a serving task taken out and put back: a flap).
 */
export interface Presence {
  first: number;
  gone?: number;
  flaps: number;
  flapsAt: Array<[number, number]>;
}

/** Per service, from one listing: tasks running (desired and actual), and those of them not in the baseline. */
export type ServiceSummary = Array<[service: string, running: number, runningNew: number]>;

export interface ObserverResult {
  baseline: string[];
  seen: Array<[string, Seen]>;
  inFile: Array<[string, Presence]>;
  exitAt: Array<[string, number]>;
  startAt: Array<[string, number]>;
  startReadAt: Array<[string, number]>;
  phaseOf: Array<[string, string]>;
  /** How long each of the observer's task listings took: the daemon's latency under the churn. */
  listMs: number[];
}

export type ObserverMessage =
  | { type: 'ready' }
  | { type: 'tasks'; askedAt: number; summary: ServiceSummary }
  | { type: 'result'; result: ObserverResult };
export type ObserverCommand = { type: 'phase'; phase: string } | { type: 'stop' };

const send = (message: ObserverMessage, sent?: () => void) => process.send!(message, undefined, {}, sent);

async function observe(): Promise<void> {
  const docker = new Docker({ socketPath: process.env.BENCH_OBSERVE_SOCKET! });
  const file = process.env.BENCH_OBSERVE_FILE!;
  const listMs: number[] = [];
  const allTasks = async () => {
    const started = performance.now();
    const tasks = (await docker.listTasks()) as TaskJson[];
    listMs.push(performance.now() - started);
    return tasks;
  };

  // Container starts and exits, streamed: the daemon keeps only its last 256 events for later queries.
  const exitAt = new Map<string, number>();
  const startAt = new Map<string, number>();
  /** When this process read each `start` event. */
  const startReadAt = new Map<string, number>();
  const events = (await docker.getEvents({
    filters: { type: ['container'], event: ['die', 'start'] },
  })) as NodeJS.ReadableStream & { destroy(): void };
  let pending = '';
  events.on('data', (chunk: Buffer) => {
    pending += chunk.toString();
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines)
      if (line.trim()) {
        const event = JSON.parse(line) as { id: string; Action: string; timeNano: number };
        (event.Action === 'start' ? startAt : exitAt).set(event.id, event.timeNano / 1e6);
        if (event.Action === 'start') startReadAt.set(event.id, Date.now());
      }
  });

  let phase = 'roll';
  const phaseOf = new Map<string, string>();
  // Not timed: listMs holds the listings of the churn only.
  const baseline = new Set(((await docker.listTasks()) as TaskJson[]).map((t) => t.ID));
  const seen = new Map<string, Seen>();
  const inFile = new Map<string, Presence>();
  // The file already holds every baseline address.
  for (const ip of fileIps(file)) inFile.set(ip, { first: 0, flaps: 0, flapsAt: [] });
  let watching = true;

  const watchers = [
    (async () => {
      while (watching) {
        const at = Date.now();
        const ips = fileIps(file);
        for (const ip of ips) {
          const entry = inFile.get(ip);
          if (!entry) inFile.set(ip, { first: at, flaps: 0, flapsAt: [] });
          else if (entry.gone !== undefined) {
            entry.flapsAt.push([entry.gone, at]);
            entry.gone = undefined;
            entry.flaps += 1;
          }
        }
        for (const [ip, entry] of inFile) if (entry.gone === undefined && !ips.has(ip)) entry.gone = at;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })(),
    (async () => {
      while (watching) {
        const at = Date.now();
        const counts = new Map<string, [number, number]>();
        for (const task of await allTasks()) {
          let entry = seen.get(task.ID);
          if (!entry) seen.set(task.ID, (entry = { service: task.ServiceID, ip: undefined, container: undefined }));
          entry.ip ??= ipOf(task);
          entry.container ??= task.Status.ContainerStatus?.ContainerID;
          if (task.Status.State === 'running' && entry.runningAt === undefined) {
            entry.runningAt = at;
            const stamp = Date.parse(task.Status.Timestamp ?? '');
            if (Number.isFinite(stamp)) entry.runningStamp = stamp;
            phaseOf.set(task.ID, phase);
          }
          // Scale-downs ask for `remove` on recent engines, updates for `shutdown`.
          if (task.DesiredState !== 'running' && entry.shutdownAt === undefined) entry.shutdownAt = at;
          const count = counts.get(task.ServiceID) ?? [0, 0];
          if (task.DesiredState === 'running' && task.Status.State === 'running') {
            count[0] += 1;
            if (!baseline.has(task.ID)) count[1] += 1;
          }
          counts.set(task.ServiceID, count);
        }
        send({ type: 'tasks', askedAt: at, summary: [...counts].map(([id, [all, fresh]]) => [id, all, fresh]) });
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })(),
  ];

  process.on('message', (command: ObserverCommand) => {
    if (command.type === 'phase') phase = command.phase;
    else {
      watching = false;
      void (async () => {
        await Promise.all(watchers);
        // The last exits' events.
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        events.destroy();
        send(
          {
            type: 'result',
            result: {
              baseline: [...baseline],
              seen: [...seen],
              inFile: [...inFile],
              exitAt: [...exitAt],
              startAt: [...startAt],
              startReadAt: [...startReadAt],
              phaseOf: [...phaseOf],
              listMs,
            },
          },
          // A large message is still being written when send() returns: disconnecting then loses it.
          () => process.disconnect(),
        );
      })();
    }
  });
  send({ type: 'ready' });
}

if (process.send !== undefined) await observe();
