/**
 * The client side of bench/feed.ts, in its own process so that clients and server do not share
 * an event loop. Connects N clients, each subscribed to one deployment; "stalled" clients stop
 * reading their socket right after subscribing. Reports the latency from a sample's creation
 * (its `ts`, wall clock in ms with sub-ms precision) to its arrival, for reading clients only.
 */
import { WebSocket } from 'ws';

const [url, total, stalledShare, deployments] = [
  process.argv[2]!,
  Number(process.argv[3]),
  Number(process.argv[4]),
  Number(process.argv[5]),
];
const now = () => performance.timeOrigin + performance.now();
const latencies: number[] = [];
let closedSlow = 0;
let closedOther = 0;
let measuring = false;
/** The harness's own CPU while measuring: it shares the machine with the server. */
let cpu0 = process.cpuUsage();

const SAMPLES_PREFIX = Buffer.from('{"type":"samples"');
const TS_KEY = Buffer.from('"ts":');
let frames = 0;

/** The `ts` of every sample in a frame, without parsing the rest. */
function timestamps(data: Buffer): number[] {
  const found: number[] = [];
  for (let at = data.indexOf(TS_KEY); at !== -1; at = data.indexOf(TS_KEY, at + TS_KEY.length)) {
    let end = at + TS_KEY.length;
    while (end < data.length && data[end] !== 0x2c && data[end] !== 0x7d) end++;
    found.push(Number(data.toString('latin1', at + TS_KEY.length, end)));
  }
  return found;
}

const sockets: WebSocket[] = [];
for (let i = 0; i < total; i++) {
  const stalled = i % Math.round(1 / stalledShare) === 0 && stalledShare > 0;
  // The server's frames are its own JSON; skipping UTF-8 validation keeps the harness cheap.
  const socket = new WebSocket(url, { skipUTF8Validation: true });
  sockets.push(socket);
  socket.on('error', () => undefined);
  socket.on('close', (code) => (code === 4008 ? closedSlow++ : closedOther++));
  await new Promise<void>((resolve) => socket.once('open', () => resolve()));
  socket.send(JSON.stringify({ type: 'subscribe', deploymentId: `dep-${i % deployments}` }));
  if (stalled) {
    socket.once('message', () => (socket as unknown as { _socket: { pause(): void } })._socket.pause());
  } else {
    socket.on('message', (data: Buffer) => {
      if (!measuring) return;
      const arrived = now();
      if (!data.subarray(0, SAMPLES_PREFIX.length).equals(SAMPLES_PREFIX)) return;
      // Every 50th frame is parsed in full (it must be valid JSON with the same timestamps); the
      // others are scanned for their timestamps only, so the harness's own CPU does not queue
      // frames behind it and inflate what it measures.
      const scanned = timestamps(data);
      if (++frames % 50 === 0) {
        const frame = JSON.parse(data.toString()) as { samples: Array<{ ts: number }> };
        if (scanned.length !== frame.samples.length || scanned.some((ts, k) => ts !== frame.samples[k]!.ts))
          throw new Error('timestamp scan disagrees with JSON.parse');
      }
      for (const ts of scanned) latencies.push(arrived - ts);
    });
  }
}
process.send!({ type: 'ready' });
process.on('message', (message: { type: string }) => {
  if (message.type === 'measure') {
    measuring = true;
    cpu0 = process.cpuUsage();
  }
  if (message.type === 'report') {
    const cpu = process.cpuUsage(cpu0);
    latencies.sort((a, b) => a - b);
    const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? NaN;
    process.send!({
      type: 'report',
      count: latencies.length,
      p50: q(0.5),
      p99: q(0.99),
      max: latencies.at(-1) ?? NaN,
      closedSlow,
      closedOther,
      cpuMs: (cpu.user + cpu.system) / 1000,
    });
    for (const socket of sockets) socket.terminate();
    setTimeout(() => process.exit(0), 200);
  }
});
