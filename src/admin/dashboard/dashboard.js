// Sluice dashboard: plain browser JavaScript, no build step, no third-party code.
// Data: the JSON API once at load, then the live stream (/api/stream, server-sent events) with a
// `tick` every second. Everything from the server is written with textContent, never as HTML.
'use strict';

const HISTORY = 120; // chart points, one per tick
const SOURCES_EVERY_MS = 5000; // /api/sources is polled this often
const PEERS_EVERY_MS = 2000; // /api/peers is polled this often while this process has an agent or a gateway
const MAX_ROWS = 50; // rows kept in the denials and ended-flows tables
const $ = (id) => document.getElementById(id);

const state = {
  routes: [],
  denials: [],
  flows: [],
  history: [], // { at, from, to } bytes per second
  last: undefined, // previous tick's totals and time
};

function fmtBytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? Math.round(n) : n.toFixed(n < 10 ? 2 : 1)} ${units[i]}`;
}

function fmtAge(ms) {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  return `${h}h ${String(m % 60).padStart(2, '0')}m`;
}

const fmtTime = (iso) => new Date(iso).toLocaleTimeString();
const hostPort = (addr, port) => (addr === undefined ? '–' : addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`);

function cell(text, cls) {
  const td = document.createElement('td');
  td.textContent = String(text);
  if (cls) td.className = cls;
  return td;
}

/** Replaces a table body with rows; `key` lets rows keep their identity for tests and styling. */
function fillTable(id, items, columns, emptyText, key) {
  const tbody = $(id).tBodies[0];
  const rows = [];
  for (const item of items) {
    const tr = document.createElement('tr');
    if (key) tr.dataset.key = String(key(item));
    for (const [get, cls] of columns) tr.append(cell(get(item), cls));
    rows.push(tr);
  }
  if (rows.length === 0) {
    const tr = document.createElement('tr');
    const td = cell(emptyText, 'empty');
    td.colSpan = $(id).tHead.rows[0].cells.length;
    tr.append(td);
    rows.push(tr);
  }
  tbody.replaceChildren(...rows);
}

async function api(path) {
  const res = await fetch(path, { credentials: 'same-origin', headers: { accept: 'application/json' } });
  if (res.status === 401) {
    location.href = '/login';
    throw new Error('unauthorized');
  }
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return res.json();
}

function settingsText(s) {
  const parts = [];
  if (s.idleTimeout) parts.push(`idle ${s.idleTimeout}`);
  if (s.maxSessions !== undefined) parts.push(`max ${s.maxSessions || '∞'}`);
  if (s.maxConnections !== undefined) parts.push(`max ${s.maxConnections || '∞'}`);
  if (s.rate && s.rate.perSecond) parts.push(`${s.rate.perSecond}/s`);
  if (s.acl && s.acl !== 'off') parts.push(`acl ${s.acl}`);
  if (s.proxyProtocol) parts.push('proxy-protocol');
  if (s.bandwidth) {
    for (const [scope, dirs] of Object.entries(s.bandwidth)) {
      const both = dirs.up && dirs.up === dirs.down;
      const text = both ? dirs.up : [dirs.up && `↑${dirs.up}`, dirs.down && `↓${dirs.down}`].filter(Boolean).join(' ');
      parts.push(`${scope === 'perSource' ? 'per source' : 'per route'} ${text}`);
    }
  }
  return parts.join(', ');
}

/** A route's name with where it comes from: container labels, or an agent's service published here. */
function routeLabel(r) {
  if (r.origin) return `${r.name} (container ${r.origin.container})`;
  if (r.kind === 'published') return `${r.name} (published by ${r.agent}${r.state === 'up' ? '' : `, ${r.state}`})`;
  return r.name;
}

function renderRoutes(activeByName) {
  fillTable(
    'routes',
    state.routes,
    [
      [routeLabel],
      [(r) => r.proto],
      [(r) => r.listen],
      [(r) => r.address],
      [(r) => r.upstream],
      [(r) => (activeByName && activeByName.has(r.name) ? activeByName.get(r.name) : r.active), 'num'],
      [(r) => settingsText(r.settings)],
    ],
    'no routes',
    (r) => r.name,
  );
}

function renderSessions(tick) {
  fillTable(
    'sessions',
    tick.sessions,
    [
      [(s) => s.flowId, 'num'],
      [(s) => s.route],
      [(s) => s.proto],
      [(s) => hostPort(s.clientAddr, s.clientPort)],
      [(s) => hostPort(s.upstreamAddr, s.upstreamPort)],
      [(s) => s.state],
      [(s) => fmtAge(s.ageMs), 'num'],
      [(s) => s.bytesFromClient, 'num bytes-from'],
      [(s) => s.bytesToClient, 'num bytes-to'],
      [(s) => (s.proto === 'udp' ? `${s.packetsFromClient} / ${s.packetsToClient}` : '–'), 'num'],
    ],
    'no live sessions',
    (s) => s.flowId,
  );
  $('sessions-note').textContent = tick.sessionsTotal > tick.sessions.length ? `(${tick.sessions.length} of ${tick.sessionsTotal} shown)` : `(${tick.sessionsTotal})`;
}

function banText(ban) {
  if (ban === null || ban === undefined) return '–';
  if (typeof ban !== 'object') return String(ban);
  return [ban.source, ban.reason, ban.expiresAt && `until ${new Date(ban.expiresAt).toLocaleString()}`].filter((x) => x !== undefined && x !== null && x !== '').join(' · ') || 'banned';
}

async function loadSources() {
  const v = await api('/api/sources?window=1m&by=sessions&limit=20');
  fillTable(
    'sources',
    v.sources,
    [
      [(x) => x.source],
      [(x) => x.last1m.sessions, 'num'],
      [(x) => x.active, 'num'],
      [(x) => fmtBytes(x.last1m.bytes + x.liveBytes), 'num'],
      [(x) => x.last1m.rejections, 'num'],
      [(x) => x.last10m.sessions, 'num'],
      [(x) => banText(x.ban)],
    ],
    'no sources in the last minute',
    (x) => x.source,
  );
}

function renderDenials() {
  fillTable(
    'denials',
    state.denials,
    [[(d) => fmtTime(d.time)], [(d) => d.route], [(d) => hostPort(d.clientAddr, d.clientPort)], [(d) => d.reason + (d.observeOnly ? ' (observe-only)' : ''), 'reason']],
    'no denials',
  );
  $('total-denials').textContent = String(state.denials.length);
}

/** The ban list (GET /api/bans, docs/bans.md), read at start and every BANS_POLL_MS. */
const BANS_POLL_MS = 5000;

async function loadBans() {
  const body = await api('/api/bans');
  fillTable(
    'bans',
    body.bans,
    // CrowdSec decisions (source crowdsec) come after the list's own bans; one without a duration lasts until CrowdSec deletes it.
    [[(b) => b.target], [(b) => b.source], [(b) => (b.expiresAt === null ? 'when deleted' : new Date(b.expiresAt).toLocaleString())], [(b) => b.reason, 'reason']],
    'no bans',
    (b) => b.target,
  );
  // The API sends one page (the first 100); the note says when the list holds more.
  $('bans-note').textContent = body.total > body.bans.length ? `(${body.bans.length} of ${body.total} shown)` : `(${body.total})`;
}

function renderFlows() {
  fillTable(
    'flows',
    state.flows,
    [
      [(f) => fmtTime(f.time)],
      [(f) => f.route],
      [(f) => hostPort(f.clientAddr, f.clientPort)],
      [(f) => fmtAge(f.durationMs), 'num'],
      [(f) => `${fmtBytes(f.bytesFromClient)} / ${fmtBytes(f.bytesToClient)}`, 'num'],
      [(f) => f.reason],
    ],
    'nothing ended yet',
  );
}

function pairsText(pairs) {
  const n = (o) => pairs.filter((p) => p.outcome === o).length;
  if (pairs.length === 0) return '–';
  return `${n('succeeded')} ok, ${n('failed')} failed, ${n('in-progress')} trying, of ${pairs.length}`;
}

function renderPeers(v) {
  const any = v.agent !== null || v.gateway !== null;
  $('peers-section').hidden = !any;
  if (!any) return false;
  fillTable(
    'peers',
    v.links,
    [
      [(l) => l.peer],
      [(l) => l.role],
      [(l) => l.state],
      [(l) => (l.state === 'idle' ? '–' : l.path)],
      [(l) => (l.timeToDirectMs === null ? '–' : `${l.timeToDirectMs} ms`), 'num'],
      [(l) => `${l.diagnosis.nat.local} / ${l.diagnosis.nat.remote}`, 'why'],
      [(l) => pairsText(l.diagnosis.pairs)],
      [(l) => l.diagnosis.selected || '–'],
      [(l) => (l.reason || '–') + (l.lastRefusal ? ` (gateway refused: ${l.lastRefusal})` : ''), 'why'],
    ],
    v.agent === null ? 'no agent in this process' : 'no peer link yet (a connect listener starts one on its first datagram)',
    (l) => l.peer,
  );
  for (const tr of $('peers').tBodies[0].rows) if (tr.cells[3] && tr.cells[3].textContent === 'direct') tr.cells[3].className = 'direct';
  const sum = (c, k) => c.flows.reduce((n, f) => n + f.counters[k], 0);
  fillTable(
    'connects',
    v.connect,
    [
      [(c) => c.name],
      [(c) => c.proto],
      [(c) => c.address || c.listen],
      [(c) => `${c.peer} / ${c.service}`],
      [(c) => c.path],
      [(c) => (c.state === 'connected' && c.linkPath ? `connected (${c.proto === 'tcp' ? 'relayed' : c.linkPath})` : c.state)],
      [(c) => c.active, 'num'],
      [(c) => `${sum(c, 'direct')} / ${sum(c, 'relayed')} / ${sum(c, 'received')}`, 'num'],
    ],
    'no connect listeners',
    (c) => c.name,
  );
  const g = v.gateway;
  $('gateway-peers').hidden = !g;
  if (g) {
    const refused = Object.values(g.signals.refused).reduce((a, b) => a + b, 0);
    $('gateway-peers').textContent =
      `Gateway peer relay: signals forwarded ${g.signals.forwarded}, refused ${refused}; open flows udp ${g.openFlows.udp || 0}, tcp ${g.openFlows.tcp || 0}; ` +
      `relayed datagrams to service ${g.relayedDatagrams.toService}, to opener ${g.relayedDatagrams.toOpener} (dropped ${g.relayedDatagrams.toOpenerDropped})`;
  }
  $('peers-note').textContent = v.agent === null ? '' : `(agent ${v.agent})`;
  return true;
}

let peersTimer;
async function loadPeers() {
  const v = await api('/api/peers');
  if (renderPeers(v) && !peersTimer) peersTimer = setInterval(() => void loadPeers().catch(() => {}), PEERS_EVERY_MS);
}

function drawChart() {
  const canvas = $('chart');
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || canvas.width;
  const h = canvas.clientHeight || canvas.height;
  if (canvas.width !== Math.round(w * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const css = getComputedStyle(document.documentElement);
  const pad = { l: 70, r: 10, t: 10, b: 20 };
  const max = Math.max(1024, ...state.history.map((p) => Math.max(p.from, p.to)));
  const x = (i) => pad.l + ((w - pad.l - pad.r) * i) / (HISTORY - 1);
  const y = (v) => h - pad.b - ((h - pad.t - pad.b) * v) / max;
  ctx.strokeStyle = css.getPropertyValue('--line').trim();
  ctx.fillStyle = css.getPropertyValue('--muted').trim();
  ctx.font = '11px system-ui, sans-serif';
  ctx.lineWidth = 1;
  for (let k = 0; k <= 4; k++) {
    const v = (max * k) / 4;
    ctx.beginPath();
    ctx.moveTo(pad.l, y(v));
    ctx.lineTo(w - pad.r, y(v));
    ctx.stroke();
    ctx.fillText(`${fmtBytes(v)}/s`, 4, y(v) + 4);
  }
  ctx.fillText('now', w - pad.r - 22, h - 5);
  ctx.fillText(`-${HISTORY}s`, pad.l, h - 5);
  const offset = HISTORY - state.history.length;
  canvas.dataset.points = String(state.history.length);
  if (state.history.length < 2) return;
  const path = (field) => {
    ctx.beginPath();
    state.history.forEach((p, i) => (i === 0 ? ctx.moveTo(x(i + offset), y(p[field])) : ctx.lineTo(x(i + offset), y(p[field]))));
  };
  // "from clients" as a filled area, "to clients" as a line on top: equal rates stay visible.
  const from = css.getPropertyValue('--from').trim();
  path('from');
  ctx.lineTo(x(offset + state.history.length - 1), y(0));
  ctx.lineTo(x(offset), y(0));
  ctx.closePath();
  ctx.globalAlpha = 0.3;
  ctx.fillStyle = from;
  ctx.fill();
  ctx.globalAlpha = 1;
  ctx.lineWidth = 2;
  ctx.strokeStyle = from;
  path('from');
  ctx.stroke();
  ctx.strokeStyle = css.getPropertyValue('--to').trim();
  ctx.setLineDash([6, 4]);
  path('to');
  ctx.stroke();
  ctx.setLineDash([]);
}

function onTick(tick) {
  const t = tick.totals;
  if (state.last && tick.at > state.last.at) {
    const dt = (tick.at - state.last.at) / 1000;
    const from = Math.max(0, (t.bytesFromClient - state.last.totals.bytesFromClient) / dt);
    const to = Math.max(0, (t.bytesToClient - state.last.totals.bytesToClient) / dt);
    state.history.push({ at: tick.at, from, to });
    if (state.history.length > HISTORY) state.history.shift();
    $('rate-from').textContent = `${fmtBytes(from)}/s`;
    $('rate-to').textContent = `${fmtBytes(to)}/s`;
  }
  state.last = { at: tick.at, totals: t };
  $('total-from').textContent = fmtBytes(t.bytesFromClient);
  $('total-to').textContent = fmtBytes(t.bytesToClient);
  $('total-active').textContent = String(tick.sessionsTotal);

  let routesChanged = false;
  let denialsChanged = false;
  let flowsChanged = false;
  let peersChanged = false;
  for (const e of tick.events) {
    if (e.type === 'session-rejected') {
      state.denials.unshift({ time: new Date(e.at).toISOString(), route: e.route, proto: e.proto, clientAddr: e.clientAddr, clientPort: e.clientPort, reason: e.reason });
      denialsChanged = true;
    } else if (e.type === 'session-ended') {
      flowsChanged = true;
    } else if (e.type === 'route-up' || e.type === 'route-down' || e.type === 'config-reloaded') {
      routesChanged = true;
    } else if (e.type === 'peer-path') {
      peersChanged = true;
    }
  }
  if (denialsChanged) {
    state.denials.length = Math.min(state.denials.length, MAX_ROWS);
    renderDenials();
  }
  if (flowsChanged) void loadFlows();
  if (routesChanged) void loadRoutes();
  if (peersChanged) void loadPeers().catch(() => {});
  renderRoutes(new Map(tick.routes.map((r) => [r.name, r.active])));
  renderSessions(tick);
  drawChart();
}

async function loadRoutes() {
  state.routes = (await api('/api/routes')).routes;
  renderRoutes();
  renderPools();
}

const POOLS_EVERY_MS = 2000; // /api/routes is polled this often once a route has a pool (member health moves on its own)
let poolsTimer;

/** Pooled routes' members: health, last check, sessions and bytes (docs/pools.md). */
function renderPools() {
  const members = state.routes.flatMap((r) => (r.pool ? r.pool.members.map((m) => ({ route: r.name, ...m })) : []));
  $('pools-section').hidden = members.length === 0;
  if (members.length === 0) return;
  poolsTimer ??= setInterval(() => void loadRoutes().catch(() => {}), POOLS_EVERY_MS);
  fillTable(
    'pool-members',
    members,
    [
      [(m) => m.route],
      [(m) => `${m.label}${m.backup ? ' (backup)' : ''}`],
      [(m) => m.weight, 'num'],
      [(m) => m.health, `health-${m.health}`],
      [(m) => (m.lastCheck ? `${m.lastCheck.outcome} in ${m.lastCheck.latencyMs} ms` : '–')],
      [(m) => m.active, 'num'],
      [(m) => m.sessions, 'num'],
      [(m) => fmtBytes(m.bytesFromClient), 'num'],
      [(m) => fmtBytes(m.bytesToClient), 'num'],
    ],
    'no pool members',
    (m) => `${m.route}|${m.key}`,
  );
}


async function loadFlows() {
  state.flows = (await api(`/api/flows?limit=${MAX_ROWS}`)).flows;
  renderFlows();
}

function connect() {
  const es = new EventSource('/api/stream');
  es.addEventListener('open', () => {
    $('conn').textContent = 'live';
    $('conn').className = 'badge on';
  });
  es.addEventListener('tick', (m) => onTick(JSON.parse(m.data)));
  es.addEventListener('error', () => {
    $('conn').textContent = 'reconnecting';
    $('conn').className = 'badge off';
    // EventSource retries by itself; a 401 ends it, so check whether we were logged out.
    if (es.readyState === EventSource.CLOSED) void api('/api/health').then(() => setTimeout(connect, 3000), () => {});
  });
}

async function main() {
  const health = await api('/api/health');
  $('meta').textContent = `v${health.version} · up since ${new Date(health.startedAt).toLocaleString()}`;
  $('logout').hidden = !health.auth;
  state.denials = (await api(`/api/denials?limit=${MAX_ROWS}`)).denials;
  renderDenials();
  await Promise.all([loadRoutes(), loadFlows(), loadPeers(), loadSources(), loadBans()]);
  setInterval(() => void loadSources().catch(() => {}), SOURCES_EVERY_MS);
  setInterval(() => void loadBans().catch(() => {}), BANS_POLL_MS);
  drawChart();
  connect();
}

window.addEventListener('resize', drawChart);
main().catch((err) => {
  $('conn').textContent = 'error';
  $('meta').textContent = String(err.message || err);
});
