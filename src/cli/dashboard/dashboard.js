// The Sluice dashboard: plain JavaScript, no build step, no CDN. It reads the run's topology and
// a state a second from the server-sent events of `/events` (see src/cli/http.ts), keeps the last
// five minutes in memory for sparklines, and redraws. Every text from the run is set with
// `textContent`, never as HTML (a dead letter's record is user data).

const HISTORY_MS = 5 * 60 * 1000;
const SVG = 'http://www.w3.org/2000/svg';
const NODE_W = 170;
const NODE_H = 58;
const COL_GAP = 70;
const ROW_GAP = 18;

/** @type {{pipeline: string, stages: {name: string, kind: string, component: string}[], edges: {from: string, port: string, to: string}[], dlq?: string} | undefined} */
let topology;
/** Per stage: samples of `{t, in, out}` rates (records/s). */
const rates = new Map();
/** Per `stage/partition`: samples of `{t, lag}`. */
const lagHistory = new Map();
let previous;

const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

function el(tag, attrs = {}, text) {
  const e = tag.startsWith('svg:')
    ? document.createElementNS(SVG, tag.slice(4))
    : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = String(text);
  return e;
}

const fmtCount = (n) => (n === undefined ? '–' : Math.round(n).toLocaleString('en-US'));
function fmtRate(r) {
  if (!Number.isFinite(r) || r <= 0) return '0/s';
  if (r < 1000) return `${Math.round(r)}/s`;
  if (r < 1e6) return `${(r / 1e3).toFixed(r < 1e4 ? 2 : 1)}k/s`;
  return `${(r / 1e6).toFixed(2)}M/s`;
}
function fmtMs(ms) {
  if (ms === undefined) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 7_200_000) return `${(ms / 60_000).toFixed(1)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}
function fmtBytes(n) {
  if (n === undefined) return '–';
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

/** Column of each stage: longest path from a source over record edges; the dlq goes last. */
function layout(topo) {
  const depth = new Map(topo.stages.map((s) => [s.name, 0]));
  const edges = topo.edges.filter((e) => e.port !== 'dlq');
  for (let pass = 0; pass < topo.stages.length; pass++) {
    for (const e of edges) depth.set(e.to, Math.max(depth.get(e.to) ?? 0, (depth.get(e.from) ?? 0) + 1));
  }
  let max = 0;
  for (const d of depth.values()) max = Math.max(max, d);
  if (topo.dlq !== undefined) depth.set(topo.dlq, max + 1);
  const columns = new Map();
  for (const s of topo.stages) {
    const d = depth.get(s.name) ?? 0;
    if (!columns.has(d)) columns.set(d, []);
    columns.get(d).push(s.name);
  }
  const pos = new Map();
  let height = 0;
  for (const [d, names] of columns) {
    names.forEach((name, i) => {
      pos.set(name, { x: 10 + d * (NODE_W + COL_GAP), y: 10 + i * (NODE_H + ROW_GAP) });
      height = Math.max(height, 10 + (i + 1) * (NODE_H + ROW_GAP));
    });
  }
  return { pos, width: 10 + (Math.max(...columns.keys()) + 1) * (NODE_W + COL_GAP), height };
}

function drawGraph(topo) {
  const svg = $('graph');
  svg.replaceChildren();
  const { pos, width, height } = layout(topo);
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.style.height = `${height}px`;
  for (const e of topo.edges) {
    const a = pos.get(e.from);
    const b = pos.get(e.to);
    if (!a || !b) continue;
    const x1 = a.x + NODE_W;
    const y1 = a.y + NODE_H / 2;
    const x2 = b.x;
    const y2 = b.y + NODE_H / 2;
    const mid = (x1 + x2) / 2;
    const kind = e.port === 'dlq' ? 'dlq' : e.port === 'out' ? 'main' : 'side';
    svg.append(
      el('svg:path', {
        class: `edge ${kind}`,
        d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`,
        'data-from': e.from,
        'data-to': e.to,
        'data-port': e.port,
      }),
    );
    if (kind === 'side')
      svg.append(el('svg:text', { class: 'edge-label', x: mid - 12, y: (y1 + y2) / 2 - 4 }, e.port));
  }
  for (const s of topo.stages) {
    const p = pos.get(s.name);
    const cls = s.name === topo.dlq ? 'dlq' : s.kind;
    const g = el('svg:g', {
      class: `node ${cls}`,
      'data-stage': s.name,
      transform: `translate(${p.x},${p.y})`,
    });
    g.append(el('svg:rect', { width: NODE_W, height: NODE_H }));
    g.append(el('svg:text', { x: 10, y: 18 }, s.name));
    g.append(el('svg:text', { class: 'sub', x: 10, y: 33 }, `${s.kind} · ${s.component}`));
    g.append(el('svg:text', { class: 'rate', x: 10, y: 49, 'data-rate': s.name }, ''));
    svg.append(g);
  }
}

function sparkline(points, series, max) {
  const w = 160;
  const h = 24;
  const svg = el('svg:svg', { class: 'spark', width: w, height: h, viewBox: `0 0 ${w} ${h}` });
  if (points.length < 2) return svg;
  // The x axis spans what was seen, up to the last five minutes, so a young run fills it too.
  const t1 = points[points.length - 1].t;
  const span = Math.max(1, Math.min(HISTORY_MS, t1 - points[0].t));
  const t0 = t1 - span;
  const top = Math.max(max, 1);
  for (const key of series) {
    const coords = points.map(
      (p) => `${(((p.t - t0) / span) * w).toFixed(1)},${(h - 1 - (p[key] / top) * (h - 2)).toFixed(1)}`,
    );
    svg.append(el('svg:polyline', { class: key, points: coords.join(' ') }));
  }
  return svg;
}

function push(map, key, sample) {
  if (!map.has(key)) map.set(key, []);
  const list = map.get(key);
  list.push(sample);
  while (list.length > 0 && sample.t - list[0].t > HISTORY_MS) list.shift();
  return list;
}

function update(state) {
  const snap = state.snapshot;
  $('pipeline').textContent = snap.pipeline;
  const status = $('status');
  status.textContent = snap.state;
  status.dataset.state = snap.state;
  const totals = $('totals');
  totals.replaceChildren();
  for (const [label, value] of [
    ['read', fmtCount(snap.recordsRead)],
    ['written', fmtCount(snap.recordsWritten)],
    ['DLQ', fmtCount(snap.deadLetters)],
    ['dropped', fmtCount(snap.droppedRecords)],
    ['elapsed', fmtMs(snap.elapsedMs)],
  ]) {
    const span = el('span', {}, `${label} `);
    span.append(el('b', { 'data-total': label }, value));
    totals.append(span);
  }

  const dt = previous ? (snap.elapsedMs - previous.snapshot.elapsedMs) / 1000 : 0;
  const prevStage = new Map((previous?.snapshot.stages ?? []).map((s) => [s.name, s]));
  const queuedInto = new Map();
  for (const c of snap.channels ?? []) {
    const q = queuedInto.get(c.to) ?? { queued: 0, capacity: 0 };
    q.queued += c.queued;
    q.capacity += c.capacity;
    queuedInto.set(c.to, q);
  }
  const body = $('stages').querySelector('tbody');
  body.replaceChildren();
  for (const s of snap.stages) {
    const before = prevStage.get(s.name);
    const inCount = s.kind === 'source' ? s.recordsOut : s.recordsIn;
    const inBefore = before ? (before.kind === 'source' ? before.recordsOut : before.recordsIn) : inCount;
    const rIn = dt > 0 ? (inCount - inBefore) / dt : 0;
    const rOut = dt > 0 ? (s.recordsOut - (before?.recordsOut ?? s.recordsOut)) / dt : 0;
    const blocked = dt > 0 && before ? Math.min(1, (s.blockedMs - before.blockedMs) / (dt * 1000)) : 0;
    const hist = push(rates, s.name, { t: state.time, in: rIn, out: rOut });
    const max = Math.max(...hist.map((p) => Math.max(p.in, p.out)));
    const q = queuedInto.get(s.name) ?? { queued: 0, capacity: 0 };
    const fill = q.capacity > 0 ? q.queued / q.capacity : 0;

    const tr = el('tr', { 'data-stage': s.name });
    tr.append(el('td', {}, s.name), el('td', {}, s.component));
    tr.append(
      el('td', { 'data-in-rate': s.name }, fmtRate(rIn)),
      el('td', { 'data-out-rate': s.name }, fmtRate(rOut)),
    );
    const spark = el('td');
    spark.append(sparkline(hist, ['in', 'out'], max));
    tr.append(spark);
    const bp = el('td');
    const bar = el('span', { class: 'bar', title: 'share of the last interval blocked sending downstream' });
    const fillBar = el('i');
    fillBar.style.width = `${Math.round(blocked * 100)}%`;
    bar.append(fillBar);
    bp.append(bar, document.createTextNode(`${Math.round(blocked * 100)}%`));
    tr.append(bp);
    tr.append(el('td', {}, q.capacity > 0 ? `${q.queued}/${q.capacity}` : '–'));
    tr.append(
      el('td', { class: s.deadLetters > 0 ? 'dead' : '', 'data-dlq': s.name }, fmtCount(s.deadLetters)),
    );
    tr.append(
      el(
        'td',
        {},
        s.watermark === undefined ? '–' : new Date(s.watermark).toISOString().replace('T', ' ').slice(0, 19),
      ),
    );
    tr.append(el('td', {}, s.watermark === undefined ? '–' : fmtMs(state.time - s.watermark)));
    tr.append(el('td', {}, s.custom?.lateEvents === undefined ? '–' : fmtCount(s.custom.lateEvents)));
    body.append(tr);

    const rate = document.querySelector(`[data-rate="${CSS.escape(s.name)}"]`);
    if (rate)
      rate.textContent = `in ${fmtRate(rIn)} · out ${fmtRate(rOut)}${s.deadLetters > 0 ? ` · DLQ ${fmtCount(s.deadLetters)}` : ''}`;
    const rect = document.querySelector(`g.node[data-stage="${CSS.escape(s.name)}"] rect`);
    if (rect)
      rect.style.stroke =
        fill >= 0.75 || blocked >= 0.5 ? 'var(--bad)' : fill >= 0.5 || blocked >= 0.2 ? 'var(--warn)' : '';
  }

  const cp = snap.checkpoint;
  const dl = $('checkpoints');
  dl.replaceChildren();
  const rows = cp
    ? [
        ['completed', fmtCount(cp.completed)],
        ['failed', fmtCount(cp.failed)],
        ['last id', cp.lastId],
        ['last duration', fmtMs(cp.completed > 0 ? cp.lastDurationMs : undefined)],
        ['last state size', fmtBytes(cp.completed > 0 ? cp.lastStateBytes : undefined)],
        ['age', fmtMs(cp.ageMs)],
      ]
    : [['checkpoints', 'off']];
  for (const [k, v] of rows) dl.append(el('dt', {}, k), el('dd', { 'data-checkpoint': k }, v));

  const lagBody = $('lag').querySelector('tbody');
  lagBody.replaceChildren();
  const ages = [];
  for (const [stage, lag] of Object.entries(state.lag ?? {})) {
    if (lag.commitAgeMs !== undefined) ages.push(`${stage}: last commit ${fmtMs(lag.commitAgeMs)} ago`);
    for (const p of lag.partitions) {
      const hist = push(lagHistory, `${stage}/${p.partition}`, { t: state.time, lag: p.lag });
      const tr = el('tr', { 'data-partition': p.partition });
      tr.append(
        el('td', {}, stage),
        el('td', {}, p.partition),
        el('td', {}, fmtCount(p.position)),
        el('td', {}, fmtCount(p.end)),
      );
      tr.append(el('td', { 'data-lag': p.partition }, fmtCount(p.lag)));
      const spark = el('td');
      spark.append(sparkline(hist, ['lag'], Math.max(...hist.map((x) => x.lag))));
      tr.append(spark);
      lagBody.append(tr);
    }
  }
  if (lagBody.childElementCount === 0) {
    const tr = el('tr');
    tr.append(el('td', { colspan: 6, class: 'muted' }, 'no partitioned source'));
    lagBody.append(tr);
  }
  $('commit-age').textContent = ages.join(' · ');

  $('dlq-total').textContent =
    `(${fmtCount(snap.deadLetters)} in total; the latest ${state.deadLetters.length} shown, secrets redacted)`;
  const deadBody = $('dead-letters').querySelector('tbody');
  deadBody.replaceChildren();
  for (const d of [...state.deadLetters].reverse()) {
    const tr = el('tr', { class: 'dead-letter' });
    tr.append(
      el('td', {}, d.time.replace('T', ' ').slice(0, 23)),
      el('td', {}, d.stage),
      el('td', {}, d.error.code),
      el('td', { class: 'preview' }, d.error.message),
      el('td', { class: 'preview' }, typeof d.record === 'string' ? d.record : JSON.stringify(d.record)),
    );
    deadBody.append(tr);
  }
  previous = state;
}

function connect() {
  const events = new EventSource('events');
  events.addEventListener('topology', (e) => {
    topology = JSON.parse(e.data);
    drawGraph(topology);
  });
  events.onmessage = (e) => {
    if (topology) update(JSON.parse(e.data));
  };
  events.onerror = () => {
    const status = $('status');
    status.textContent = previous ? `${previous.snapshot.state} · disconnected` : 'disconnected';
    status.dataset.state = 'disconnected';
  };
}

connect();
