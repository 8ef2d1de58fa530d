/*
 * The deployment dashboard at /ui: a picker fed by GET /api/v1/deployments, charts (uPlot) of
 * stored history (GET /api/v1/deployments/{id}/metrics) joined to the live feed (/ws/metrics),
 * per-deployment totals and per-container lines, reconnection with resume (`since`) and a
 * shareable URL (/ui?deployment=…&range=…). The token never goes in that URL: it is read once from
 * the fragment (#token=…, not sent to servers) or typed in, and kept in sessionStorage.
 */
'use strict';
(() => {
  const INTERVAL_MS = 5_000;
  const RANGES = {
    live: { ms: 5 * 60_000, step: null },
    '1h': { ms: 3_600_000, step: '1m' },
    '24h': { ms: 86_400_000, step: '5m' },
    '7d': { ms: 7 * 86_400_000, step: '1h' },
  };
  /** Live samples kept per container: a day at the sampling interval. */
  const MAX_LIVE = 17_280;
  const HISTORY_REFRESH_MS = 60_000;
  const PALETTE = ['#58a6ff', '#3fb950', '#d29922', '#bc8cff', '#ff7b72', '#39c5cf', '#f778ba', '#a5d6ff', '#7ee787'];

  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  const state = {
    token: readToken(),
    deploymentId: params.get('deployment') || '',
    range: RANGES[params.get('range')] ? params.get('range') : 'live',
    /** containerId → { nodeId, samples: [] } oldest first. */
    live: new Map(),
    history: null,
    containersHistory: null,
    /** Stored request metrics (GET …/requests), and live `requests` frames oldest first. */
    requestsHistory: null,
    liveRequests: [],
    lastTs: 0,
    socket: null,
    retries: 0,
    retryTimer: null,
    historyTimer: null,
    charts: {},
    /** The x axis of every chart: the chosen range, ending now (seconds). */
    bounds: [0, 1],
    generation: 0,
  };

  function readToken() {
    const hash = new URLSearchParams(location.hash.slice(1));
    const fromHash = hash.get('token');
    if (fromHash) {
      sessionStorage.setItem('swarm-edge-token', fromHash);
      history.replaceState(null, '', location.pathname + location.search);
    }
    return sessionStorage.getItem('swarm-edge-token') || '';
  }

  // ---- formatting -------------------------------------------------------------------------

  function bytes(n, perSecond) {
    if (n == null || !Number.isFinite(n)) return '–';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    let v = Math.abs(n);
    while (v >= 1024 && i < units.length - 1) {
      v /= 1024;
      i++;
    }
    return (n < 0 ? '-' : '') + v.toFixed(v < 10 && i ? 1 : 0) + ' ' + units[i] + (perSecond ? '/s' : '');
  }
  const percent = (n) => (n == null || !Number.isFinite(n) ? '–' : n.toFixed(n < 10 ? 1 : 0) + ' %');
  const shortId = (id) => id.slice(0, 12);
  const ago = (ts) => {
    const s = Math.max(0, Math.round((Date.now() - ts) / 1000));
    return s < 60 ? s + ' s ago' : Math.round(s / 60) + ' min ago';
  };

  function setConnection(kind, text) {
    const el = $('connection');
    el.dataset.state = kind;
    el.textContent = text;
  }
  function showMessage(text) {
    const el = $('message');
    el.hidden = !text;
    el.textContent = text || '';
  }

  // ---- API --------------------------------------------------------------------------------

  async function api(path) {
    const response = await fetch(path, {
      headers: state.token ? { authorization: 'Bearer ' + state.token } : {},
    });
    if (response.status === 401) {
      $('auth').hidden = false;
      throw new Error('a token is needed: ' + ((await response.json().catch(() => ({}))).message || 'unauthorized'));
    }
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.message || response.status + ' ' + response.statusText);
    return body;
  }

  async function loadDeployments() {
    const select = $('deployment');
    try {
      const { deployments } = await api('/api/v1/deployments');
      select.innerHTML = '';
      const ids = deployments.map((d) => d.deploymentId);
      if (state.deploymentId && !ids.includes(state.deploymentId)) ids.unshift(state.deploymentId);
      select.append(new Option(ids.length ? 'choose a deployment' : 'no deployments', ''));
      for (const id of ids) {
        const d = deployments.find((x) => x.deploymentId === id);
        const label = d ? `${id} — ${d.containers.length} container(s) on ${d.nodes.length} node(s)` : id;
        select.append(new Option(label, id, false, id === state.deploymentId));
      }
      showMessage('');
    } catch (error) {
      select.innerHTML = '';
      select.append(new Option('unavailable', ''));
      showMessage(error.message);
    }
  }

  async function loadHistory() {
    const range = RANGES[state.range];
    const generation = state.generation;
    if (!state.deploymentId || !range.step) {
      state.history = state.containersHistory = state.requestsHistory = null;
      return;
    }
    const to = Date.now();
    const query = `from=${to - range.ms}&to=${to}&step=${range.step}`;
    const base = `/api/v1/deployments/${encodeURIComponent(state.deploymentId)}/metrics?${query}`;
    try {
      // Per-container lines are a bonus: a deployment with too many containers still gets its totals.
      const requestsUrl = `/api/v1/deployments/${encodeURIComponent(state.deploymentId)}/requests?${query}`;
      const [deployment, containers, requests] = await Promise.all([
        api(base),
        api(base + '&per=container').catch(() => null),
        api(requestsUrl).catch(() => null),
      ]);
      if (generation !== state.generation) return;
      state.history = deployment;
      state.containersHistory = containers;
      state.requestsHistory = requests;
      showMessage('');
    } catch (error) {
      if (generation !== state.generation) return;
      showMessage('history: ' + error.message);
    }
    draw();
  }

  // ---- live feed --------------------------------------------------------------------------

  function connect() {
    clearTimeout(state.retryTimer);
    if (state.socket) {
      state.socket.onclose = null;
      state.socket.close(1000);
      state.socket = null;
    }
    if (!state.deploymentId) return setConnection('idle', 'not connected');
    const url = new URL('/ws/metrics', location.href);
    url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
    if (state.token) url.searchParams.set('token', state.token);
    const socket = new WebSocket(url);
    const deploymentId = state.deploymentId;
    state.socket = socket;
    setConnection(state.retries ? 'reconnecting' : 'connecting', state.retries ? 'reconnecting…' : 'connecting…');
    socket.onopen = () => {
      const subscribe = { type: 'subscribe', deploymentId };
      // Resume: only what this page has not seen yet.
      if (state.lastTs) subscribe.since = state.lastTs;
      socket.send(JSON.stringify(subscribe));
    };
    socket.onmessage = (event) => {
      const frame = JSON.parse(event.data);
      if (frame.type === 'error') {
        showMessage(frame.code + ': ' + frame.message);
        if (frame.code === 'unauthorized') $('auth').hidden = false;
        return;
      }
      if (frame.type === 'snapshot' || frame.type === 'samples') {
        state.retries = 0;
        if (frame.type === 'snapshot') {
          const resumed =
            frame.recovered === true
              ? ' (resumed without gaps)'
              : frame.recovered === false
                ? ' (window reloaded)'
                : '';
          setConnection('live', 'live' + resumed);
        }
        for (const sample of frame.samples) addSample(sample);
        if (frame.type === 'snapshot' && frame.requests) addRequests(frame.requests);
        scheduleDraw();
      }
      if (frame.type === 'requests') {
        addRequests(frame);
        scheduleDraw();
      }
    };
    socket.onclose = (event) => {
      if (state.socket !== socket) return;
      if (event.code === 4001) {
        setConnection('unauthorized', 'token refused');
        $('auth').hidden = false;
        return;
      }
      state.retries += 1;
      const delay = Math.min(15_000, 500 * 2 ** Math.min(state.retries, 5));
      setConnection('reconnecting', `disconnected (${event.code}); retrying in ${Math.round(delay / 1000)} s`);
      state.retryTimer = setTimeout(connect, delay);
    };
  }

  function addSample(sample) {
    if (sample.deploymentId !== state.deploymentId) return;
    let entry = state.live.get(sample.containerId);
    if (!entry) state.live.set(sample.containerId, (entry = { nodeId: sample.nodeId, samples: [] }));
    const list = entry.samples;
    // In order and once: a resumed snapshot never repeats, but a reconnection race must not draw twice.
    if (list.length && sample.ts <= list[list.length - 1].ts) return;
    list.push(sample);
    entry.nodeId = sample.nodeId;
    if (list.length > MAX_LIVE) list.splice(0, list.length - MAX_LIVE);
    if (sample.ts > state.lastTs) state.lastTs = sample.ts;
  }

  function addRequests(figures) {
    if (figures.deploymentId !== state.deploymentId) return;
    const list = state.liveRequests;
    if (list.length && figures.ts <= list[list.length - 1].ts) return;
    list.push(figures);
    if (list.length > MAX_LIVE) list.splice(0, list.length - MAX_LIVE);
  }

  /** Requests per second (all, 5xx) and latency quantiles: stored minutes, then live intervals. */
  function composeRequests(start) {
    const out = { x: [], rate: [], errors: [], p50: [], p95: [], p99: [] };
    let liveFrom = start;
    const hist = state.requestsHistory;
    if (hist) {
      const stepS = hist.stepMs / 1000;
      let last = -1;
      for (let i = 0; i < hist.t.length; i++) if (hist.requests[i] > 0 || hist.latencyMs.p50[i] != null) last = i;
      for (let i = 0; i <= last; i++) {
        if (hist.t[i] < start - hist.stepMs) continue;
        out.x.push(hist.t[i] / 1000);
        out.rate.push(hist.requests[i] / stepS);
        out.errors.push(hist.status['5xx'][i] / stepS);
        out.p50.push(hist.latencyMs.p50[i]);
        out.p95.push(hist.latencyMs.p95[i]);
        out.p99.push(hist.latencyMs.p99[i]);
      }
      if (last >= 0) liveFrom = hist.t[last] + hist.stepMs;
    }
    for (const f of state.liveRequests) {
      if (f.ts < liveFrom || f.ts < start) continue;
      const seconds = f.intervalMs / 1000;
      out.x.push(f.ts / 1000);
      out.rate.push(f.requests / seconds);
      out.errors.push(f.status['5xx'] / seconds);
      out.p50.push(f.latencyMs.p50);
      out.p95.push(f.latencyMs.p95);
      out.p99.push(f.latencyMs.p99);
    }
    return out;
  }

  // ---- composing history and live into chart columns ----------------------------------------

  /**
   * One x axis (seconds): history buckets up to where live samples take over, then live slots of
   * the sampling interval. Rates: history bytes per bucket become bytes per second.
   */
  function compose() {
    const range = RANGES[state.range];
    const now = Date.now();
    const start = now - range.ms;
    const x = [];
    const totals = { cpu: [], memory: [], rx: [], tx: [], read: [], write: [] };
    const perContainer = new Map();
    const containerIds = new Set(state.live.keys());
    const hist = state.history;
    const chist = state.containersHistory;
    if (chist) for (const c of chist.containers) containerIds.add(c.containerId);
    const ids = [...containerIds].sort();
    for (const id of ids) perContainer.set(id, { cpu: [], memory: [] });
    let liveFrom = start;
    let historyPoints = 0;
    if (hist) {
      const stepS = hist.stepMs / 1000;
      const d = hist.deployment;
      let lastData = -1;
      for (let i = 0; i < hist.t.length; i++) if (d.cpuAvg[i] != null || d.memoryAvg[i] != null) lastData = i;
      const byId = new Map((chist ? chist.containers : []).map((c) => [c.containerId, c]));
      for (let i = 0; i <= lastData; i++) {
        if (hist.t[i] < start - hist.stepMs) continue;
        x.push(hist.t[i] / 1000);
        totals.cpu.push(d.cpuAvg[i]);
        totals.memory.push(d.memoryAvg[i]);
        totals.rx.push(d.netRxBytes[i] == null ? null : d.netRxBytes[i] / stepS);
        totals.tx.push(d.netTxBytes[i] == null ? null : d.netTxBytes[i] / stepS);
        totals.read.push(d.blockReadBytes[i] == null ? null : d.blockReadBytes[i] / stepS);
        totals.write.push(d.blockWriteBytes[i] == null ? null : d.blockWriteBytes[i] / stepS);
        for (const id of ids) {
          const c = byId.get(id);
          perContainer.get(id).cpu.push(c ? c.cpuAvg[i] : null);
          perContainer.get(id).memory.push(c ? c.memoryAvg[i] : null);
        }
        historyPoints++;
      }
      if (lastData >= 0) liveFrom = hist.t[lastData] + hist.stepMs;
    }
    // Live slots after the history: each container's sample of the slot, summed for totals.
    const slots = new Map();
    for (const [id, entry] of state.live) {
      for (const s of entry.samples) {
        if (s.ts < liveFrom || s.ts < start) continue;
        const slot = Math.round(s.ts / INTERVAL_MS) * INTERVAL_MS;
        let row = slots.get(slot);
        if (!row) slots.set(slot, (row = new Map()));
        row.set(id, s);
      }
    }
    const slotTimes = [...slots.keys()].sort((a, b) => a - b);
    const sum = (row, key) => {
      let total = null;
      for (const s of row.values()) if (s[key] != null) total = (total ?? 0) + s[key];
      return total;
    };
    for (const slot of slotTimes) {
      const row = slots.get(slot);
      x.push(slot / 1000);
      totals.cpu.push(sum(row, 'cpuPercent'));
      totals.memory.push(sum(row, 'memoryBytes'));
      totals.rx.push(sum(row, 'netRxRate'));
      totals.tx.push(sum(row, 'netTxRate'));
      totals.read.push(sum(row, 'blockReadRate'));
      totals.write.push(sum(row, 'blockWriteRate'));
      for (const id of ids) {
        const s = row.get(id);
        perContainer.get(id).cpu.push(s ? s.cpuPercent : null);
        perContainer.get(id).memory.push(s ? s.memoryBytes : null);
      }
    }
    return { x, totals, perContainer, ids, historyPoints, livePoints: slotTimes.length, start, now };
  }

  // ---- charts -----------------------------------------------------------------------------

  let drawPending = false;
  function scheduleDraw() {
    if (drawPending) return;
    drawPending = true;
    requestAnimationFrame(() => {
      drawPending = false;
      draw();
    });
  }

  /** y from 0, never narrower than `floor`: a few bytes must not fill the chart's height. */
  const fromZero = (floor) => (_u, _min, max) => [0, Math.max(floor, (max || 0) * 1.1)];

  function chart(key, series, data, format, floor) {
    const host = $('chart-' + key);
    const width = Math.max(320, host.clientWidth - 20);
    const signature = series.map((s) => s.label).join('|');
    let entry = state.charts[key];
    if (entry && (entry.signature !== signature || entry.width !== width)) {
      entry.plot.destroy();
      entry = null;
    }
    if (!entry) {
      const plot = new uPlot(
        {
          width,
          height: 240,
          scales: { x: { time: true, range: () => state.bounds }, y: { range: fromZero(floor) } },
          axes: [
            { stroke: '#9aa4b2', grid: { stroke: '#262c36' }, ticks: { stroke: '#262c36' } },
            {
              stroke: '#9aa4b2',
              grid: { stroke: '#262c36' },
              ticks: { stroke: '#262c36' },
              size: 70,
              values: (_u, splits) => splits.map(format),
            },
          ],
          series: [{ label: 'time' }, ...series.map((s) => ({ ...s, value: (_u, v) => format(v) }))],
          legend: { live: true },
        },
        data,
        host,
      );
      entry = state.charts[key] = { plot, signature, width };
    } else {
      // Rescales too: x from the range's bounds (state.bounds), y from the data.
      entry.plot.setData(data);
    }
  }

  function draw() {
    const c = compose();
    state.bounds = [c.start / 1000, c.now / 1000];
    const line = (label, i, extra) => ({
      label,
      stroke: PALETTE[i % PALETTE.length],
      width: 1.5,
      spanGaps: false,
      ...extra,
    });
    const total = (label) => ({ label, stroke: '#e6e6e6', width: 2.5 });
    const containerSeries = c.ids.map((id, i) => line(shortId(id), i));
    chart(
      'cpu',
      [total('total'), ...containerSeries],
      [c.x, c.totals.cpu, ...c.ids.map((id) => c.perContainer.get(id).cpu)],
      percent,
      1,
    );
    chart(
      'memory',
      [total('total'), ...containerSeries],
      [c.x, c.totals.memory, ...c.ids.map((id) => c.perContainer.get(id).memory)],
      (v) => bytes(v),
      1024 * 1024,
    );
    chart(
      'network',
      [line('received', 0), line('sent', 2)],
      [c.x, c.totals.rx, c.totals.tx],
      (v) => bytes(v, true),
      1024,
    );
    chart(
      'disk',
      [line('read', 3), line('written', 4)],
      [c.x, c.totals.read, c.totals.write],
      (v) => bytes(v, true),
      1024,
    );
    const r = composeRequests(c.start);
    const perSecond = (v) => (v == null ? '–' : `${v < 10 ? v.toFixed(2) : Math.round(v)}/s`);
    const ms = (v) => (v == null ? '–' : `${v < 10 ? v.toFixed(1) : Math.round(v)} ms`);
    chart('requests', [line('requests', 0), line('5xx', 4)], [r.x, r.rate, r.errors], perSecond, 1);
    chart('latency', [line('p50', 1), line('p95', 2), line('p99', 4)], [r.x, r.p50, r.p95, r.p99], ms, 10);
    $('chart-requests').dataset.points = String(r.x.length);
    c.requests = r;
    for (const key of ['cpu', 'memory', 'network', 'disk']) {
      $('chart-' + key).dataset.historyPoints = String(c.historyPoints);
      $('chart-' + key).dataset.livePoints = String(c.livePoints);
    }
    drawTotals(c);
    drawTable();
  }

  function lastValue(column) {
    for (let i = column.length - 1; i >= 0; i--) if (column[i] != null) return column[i];
    return null;
  }

  function drawTotals(c) {
    const items = [
      ['CPU', percent(lastValue(c.totals.cpu))],
      ['Memory', bytes(lastValue(c.totals.memory))],
      ['Network in', bytes(lastValue(c.totals.rx), true)],
      ['Network out', bytes(lastValue(c.totals.tx), true)],
      ['Containers', String([...state.live.values()].filter((e) => e.samples.length).length || c.ids.length)],
    ];
    const r = c.requests;
    if (r && r.x.length) {
      const rate = lastValue(r.rate);
      const errors = lastValue(r.errors);
      const p95 = lastValue(r.p95);
      items.push(
        ['Requests', rate == null ? '–' : `${rate < 10 ? rate.toFixed(2) : Math.round(rate)}/s`],
        ['5xx', rate ? `${((100 * (errors || 0)) / rate).toFixed(1)} %` : '–'],
        ['Latency p95', p95 == null ? '–' : `${Math.round(p95)} ms`],
      );
    }
    $('totals').innerHTML = '';
    for (const [name, value] of items) {
      const div = document.createElement('div');
      div.className = 'total';
      div.innerHTML = '<div class="name"></div><div class="value"></div>';
      div.firstChild.textContent = name;
      div.lastChild.textContent = value;
      $('totals').append(div);
    }
  }

  function drawTable() {
    const rows = [];
    for (const [id, entry] of [...state.live.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const s = entry.samples[entry.samples.length - 1];
      if (!s) continue;
      const tr = document.createElement('tr');
      tr.dataset.container = id;
      const cells = [
        shortId(id),
        entry.nodeId,
        percent(s.cpuPercent),
        bytes(s.memoryBytes) + (s.memoryLimitBytes ? ' / ' + bytes(s.memoryLimitBytes) : ''),
        bytes(s.netRxRate, true),
        bytes(s.netTxRate, true),
        ago(s.ts),
      ];
      cells.forEach((text, i) => {
        const td = document.createElement('td');
        td.textContent = text;
        if (i >= 2) td.className = 'num';
        if (i === 0) td.title = id;
        tr.append(td);
      });
      rows.push(tr);
    }
    $('rows').replaceChildren(...rows);
  }

  // ---- wiring -----------------------------------------------------------------------------

  function shareUrl() {
    const q = new URLSearchParams();
    if (state.deploymentId) q.set('deployment', state.deploymentId);
    q.set('range', state.range);
    history.replaceState(null, '', '/ui?' + q.toString());
  }

  function markRange() {
    for (const b of $('ranges').querySelectorAll('button'))
      b.setAttribute('aria-pressed', String(b.dataset.range === state.range));
  }

  function choose(deploymentId) {
    state.deploymentId = deploymentId;
    state.generation++;
    state.live.clear();
    state.liveRequests = [];
    state.lastTs = 0;
    state.retries = 0;
    state.history = state.containersHistory = null;
    shareUrl();
    connect();
    void loadHistory();
    draw();
  }

  $('deployment').addEventListener('change', (event) => choose(event.target.value));
  $('ranges').addEventListener('click', (event) => {
    const range = event.target.dataset && event.target.dataset.range;
    if (!range || !RANGES[range]) return;
    state.range = range;
    state.generation++;
    state.history = state.containersHistory = null;
    markRange();
    shareUrl();
    void loadHistory();
    draw();
  });
  $('auth').addEventListener('submit', (event) => {
    event.preventDefault();
    state.token = $('token').value.trim();
    sessionStorage.setItem('swarm-edge-token', state.token);
    $('auth').hidden = true;
    void loadDeployments().then(() => state.deploymentId && choose(state.deploymentId));
  });
  window.addEventListener('resize', scheduleDraw);
  state.historyTimer = setInterval(() => void loadHistory(), HISTORY_REFRESH_MS);
  setInterval(drawTable, 5_000);

  markRange();
  void loadDeployments().then(() => {
    if (state.deploymentId) choose(state.deploymentId);
    else draw();
  });
})();
