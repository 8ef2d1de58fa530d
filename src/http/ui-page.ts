/**
 * GET /ui: a small live page over the websocket feed. Pick a deployment, watch one sparkline per
 * container and metric (CPU, memory, network). No framework, no build step: one HTML document
 * with its script inline, served from memory.
 */
export const UI_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>swarm-edge — live metrics</title>
<style>
  :root { color-scheme: light dark; font: 14px/1.4 system-ui, sans-serif; }
  body { margin: 0; padding: 16px 24px; background: #0f1115; color: #e6e6e6; }
  header { display: flex; gap: 12px; align-items: center; flex-wrap: wrap; margin-bottom: 16px; }
  h1 { font-size: 18px; margin: 0 16px 0 0; }
  input { background: #1b1f27; color: inherit; border: 1px solid #343a46; border-radius: 4px; padding: 6px 8px; min-width: 220px; }
  button { background: #2f6feb; color: white; border: 0; border-radius: 4px; padding: 7px 14px; cursor: pointer; }
  #status { color: #9aa4b2; }
  #status.error { color: #ff7b72; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid #252a33; vertical-align: middle; }
  th { color: #9aa4b2; font-weight: 500; }
  td.value { font-variant-numeric: tabular-nums; white-space: nowrap; }
  svg { display: block; }
  polyline { fill: none; stroke-width: 1.5; }
  .cpu polyline { stroke: #58a6ff; } .mem polyline { stroke: #3fb950; } .net polyline { stroke: #d29922; }
</style>
</head>
<body>
<header>
  <h1>swarm-edge live metrics</h1>
  <input id="deployment" placeholder="deployment id" aria-label="deployment id">
  <input id="token" placeholder="token (JWT)" aria-label="token" type="password">
  <button id="watch">Watch</button>
  <span id="status">not connected</span>
</header>
<table>
  <thead><tr><th>container</th><th>CPU %</th><th></th><th>memory</th><th></th><th>network rx+tx</th><th></th></tr></thead>
  <tbody id="rows"></tbody>
</table>
<script>
'use strict';
const KEEP = 60;
const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);
$('deployment').value = params.get('deployment') || '';
$('token').value = params.get('token') || '';
const series = new Map();
let socket;

function status(text, error) {
  $('status').textContent = text;
  $('status').className = error ? 'error' : '';
}
function bytes(n) {
  if (n == null) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return n.toFixed(i ? 1 : 0) + ' ' + units[i];
}
function sparkline(values, cls) {
  const w = 160, h = 28;
  const finite = values.filter((v) => v != null);
  const max = Math.max(1e-9, ...finite);
  // Fills the width once 20 points have arrived; older points scroll off the left.
  const step = w / (Math.max(values.length, 20) - 1);
  const points = values.map((v, i) => (w - (values.length - 1 - i) * step).toFixed(1) + ',' + (h - 2 - ((v ?? 0) / max) * (h - 4)).toFixed(1)).join(' ');
  return '<svg class="' + cls + '" width="' + w + '" height="' + h + '" viewBox="0 0 ' + w + ' ' + h + '"><polyline points="' + points + '"/></svg>';
}
function add(sample) {
  let s = series.get(sample.containerId);
  if (!s) series.set(sample.containerId, (s = { cpu: [], mem: [], net: [], last: sample, lastTs: 0 }));
  if (sample.ts <= s.lastTs) return;
  s.lastTs = sample.ts;
  s.last = sample;
  s.cpu.push(sample.cpuPercent);
  s.mem.push(sample.memoryBytes);
  s.net.push(sample.netRxRate == null ? null : sample.netRxRate + (sample.netTxRate || 0));
  for (const k of ['cpu', 'mem', 'net']) if (s[k].length > KEEP) s[k].splice(0, s[k].length - KEEP);
}
function render() {
  const rows = [...series.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([id, s]) => {
    const l = s.last;
    return '<tr data-container="' + id + '"><td title="' + id + '">' + id.slice(0, 12) + '</td>' +
      '<td class="value">' + (l.cpuPercent == null ? '–' : l.cpuPercent.toFixed(1)) + '</td><td>' + sparkline(s.cpu, 'cpu') + '</td>' +
      '<td class="value">' + bytes(l.memoryBytes) + (l.memoryLimitBytes ? ' / ' + bytes(l.memoryLimitBytes) : '') + '</td><td>' + sparkline(s.mem, 'mem') + '</td>' +
      '<td class="value">' + (l.netRxRate == null ? '–' : bytes(l.netRxRate + (l.netTxRate || 0)) + '/s') + '</td><td>' + sparkline(s.net, 'net') + '</td></tr>';
  });
  $('rows').innerHTML = rows.join('');
}
function watch() {
  const deployment = $('deployment').value.trim();
  if (!deployment) return status('enter a deployment id', true);
  if (socket) socket.close();
  series.clear();
  render();
  const url = new URL('/ws/metrics', location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const token = $('token').value.trim();
  if (token) url.searchParams.set('token', token);
  socket = new WebSocket(url);
  status('connecting…');
  socket.onopen = () => socket.send(JSON.stringify({ type: 'subscribe', deploymentId: deployment }));
  socket.onmessage = (event) => {
    const frame = JSON.parse(event.data);
    if (frame.type === 'error') return status(frame.code + ': ' + frame.message, true);
    if (frame.type === 'subscribed') status('watching ' + frame.deploymentId);
    if (frame.type === 'snapshot' || frame.type === 'samples') {
      for (const sample of frame.samples) add(sample);
      render();
      if (series.size) status('watching ' + deployment + ' — ' + series.size + ' container(s)');
    }
  };
  socket.onclose = (event) => status('disconnected (' + event.code + (event.reason ? ' ' + event.reason : '') + ')', event.code !== 1000);
}
$('watch').onclick = watch;
if ($('deployment').value) watch();
</script>
</body>
</html>
`;
