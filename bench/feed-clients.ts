/**
 * The client side of bench/feed.ts, in its own process so that clients and server do not share
 * an event loop. Connects N clients, each subscribed to one deployment; "stalled" clients stop
 * reading their socket right after subscribing. Reports the latency from a sample's creation
 * (its `ts`, wall clock in ms with sub-ms precision) to its arrival, for reading clients only.
 */
import { WebSocket } from 'ws';

const [url, total, stalledShare, deployments] = [process.argv[2]!, Number(process.argv[3]), Number(process.argv[4]), Number(process.argv[5])];
const now = () => performance.timeOrigin + performance.now();
const latencies: number[] = [];
let closedSlow = 0;
let closedOther = 0;
let measuring = false;

const sockets: WebSocket[] = [];
for (let i = 0; i < total; i++) {
  const stalled = i % Math.round(1 / stalledShare) === 0 && stalledShare > 0;
  const socket = new WebSocket(url);
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
      const text = data.toString();
      if (!text.startsWith('{"type":"samples"')) return;
      const arrived = now();
      const frame = JSON.parse(text) as { samples: Array<{ ts: number }> };
      for (const sample of frame.samples) latencies.push(arrived - sample.ts);
    });
  }
}
process.send!({ type: 'ready' });
process.on('message', (message: { type: string }) => {
  if (message.type === 'measure') measuring = true;
  if (message.type === 'report') {
    latencies.sort((a, b) => a - b);
    const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? NaN;
    process.send!({ type: 'report', count: latencies.length, p50: q(0.5), p99: q(0.99), max: latencies.at(-1) ?? NaN, closedSlow, closedOther });
    for (const socket of sockets) socket.terminate();
    setTimeout(() => process.exit(0), 200);
  }
});
