// The chart page of `mechtrade serve`: candles and volume from market.bars, trend starts,
// decisions and hand labels as markers, live updates by server-sent events, and label mode.
'use strict';

const LC = window.LightweightCharts;
const COLORS = {
  up: '#26a69a', down: '#ef5350', upAct: '#089981', downAct: '#f23645', upLate: '#80cbc4',
  downLate: '#f5a3a8', forced: '#9e9e9e', decision: '#ff9800', label: '#2962ff',
  volUp: 'rgba(38, 166, 154, .35)', volDown: 'rgba(239, 83, 80, .35)',
};
const $ = (id) => document.getElementById(id);

// Everything the page knows; tests read it through window.mechtrade.
const state = {
  info: null, contract: null, timeframe: null, profile: null, tz: 'exchange',
  bars: [], byTime: new Map(), starts: [], decisions: [], labels: [], trades: [],
  toUtc: new Map(), shownAt: new Map(), labelMode: false, live: false, liveEvents: 0, barsReceived: 0, loads: 0, ready: false,
};
window.mechtrade = { state };

// --- time zones: lightweight-charts shows timestamps as UTC, so each bar's time is shifted by the
// chosen zone's offset at that instant (and shifted back for clicks and tooltips).
const formatters = {};
function zoneName() {
  if (state.tz === 'utc') return 'UTC';
  if (state.tz === 'local') return Intl.DateTimeFormat().resolvedOptions().timeZone;
  return state.info.exchange_time_zone;
}
function offsetSeconds(t, zone) {
  if (zone === 'UTC') return 0;
  const f = formatters[zone] || (formatters[zone] = new Intl.DateTimeFormat('en-US', {
    timeZone: zone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit',
    hour: '2-digit', minute: '2-digit', second: '2-digit',
  }));
  const p = {};
  for (const part of f.formatToParts(new Date(t * 1000))) p[part.type] = part.value;
  return Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second) / 1000 - t;
}
let lastShown = -Infinity;
function shown(t) {
  let d = t + offsetSeconds(t, zoneName());
  if (d <= lastShown) d = lastShown + 1;  // an hour that repeats when clocks go back
  lastShown = d;
  state.toUtc.set(d, t);
  state.shownAt.set(t, d);
  return d;
}
function fmt(t, withDate = true) {
  const d = new Date(t * 1000);
  const opts = { timeZone: zoneName(), hourCycle: 'h23', hour: '2-digit', minute: '2-digit' };
  if (withDate) Object.assign(opts, { year: 'numeric', month: 'short', day: 'numeric', weekday: 'short' });
  return d.toLocaleString('en-GB', opts);
}

// --- chart ---------------------------------------------------------------------------------
const chart = LC.createChart($('chart'), {
  autoSize: true,
  layout: { background: { color: '#ffffff' }, textColor: '#333' },
  grid: { vertLines: { color: '#f0f3fa' }, horzLines: { color: '#f0f3fa' } },
  crosshair: { mode: LC.CrosshairMode.Normal },
  timeScale: { timeVisible: true, secondsVisible: false, rightOffset: 4, borderColor: '#d0d7de' },
  rightPriceScale: { borderColor: '#d0d7de' },
  localization: { timeFormatter: (t) => fmt(state.toUtc.get(t) ?? t) },
});
const candles = chart.addSeries(LC.CandlestickSeries, {
  upColor: COLORS.up, downColor: COLORS.down, wickUpColor: COLORS.up, wickDownColor: COLORS.down, borderVisible: false,
});
candles.priceScale().applyOptions({ scaleMargins: { top: 0.08, bottom: 0.22 } });
const volume = chart.addSeries(LC.HistogramSeries, { priceFormat: { type: 'volume' }, priceScaleId: 'volume' });
chart.priceScale('volume').applyOptions({ scaleMargins: { top: 0.82, bottom: 0 } });
const markers = LC.createSeriesMarkers(candles, []);
Object.assign(window.mechtrade, { chart, candles, volume, markers });

function candle(b) {
  return { time: shown(b.time), open: b.open, high: b.high, low: b.low, close: b.close };
}
function volumeBar(b, time) {
  return { time, value: b.volume, color: b.close >= b.open ? COLORS.volUp : COLORS.volDown };
}

// --- data ----------------------------------------------------------------------------------
async function getJson(url, options) {
  const r = await fetch(url, options);
  if (!r.ok) throw new Error(`${url.split('?')[0]}: ${r.status} ${await r.text()}`);
  return r.json();
}
function query(extra = {}) {
  return new URLSearchParams({ contract: state.contract, timeframe: state.timeframe, profile: state.profile, ...extra });
}
function status(text) { $('status').textContent = text || ''; }

function drawBars() {
  lastShown = -Infinity;
  state.toUtc.clear();
  state.shownAt.clear();
  const c = [], v = [];
  for (const b of state.bars) {
    const k = candle(b);
    c.push(k);
    v.push(volumeBar(b, k.time));
  }
  candles.setData(c);
  volume.setData(v);
}

function barAt(t) {
  // The bar in which instant t falls: the last one opening at or before it.
  let lo = 0, hi = state.bars.length - 1, found = null;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (state.bars[mid].time <= t) { found = state.bars[mid]; lo = mid + 1; } else hi = mid - 1;
  }
  return found;
}

function drawMarkers() {
  const list = [];
  const at = state.shownAt;
  for (const s of state.starts) {
    if (!at.has(s.time)) continue;
    const up = s.direction === 'up';
    const forced = s.rule === 'FORCED';
    list.push({
      time: at.get(s.time), position: up ? 'belowBar' : 'aboveBar',
      shape: forced ? 'circle' : (up ? 'arrowUp' : 'arrowDown'),
      color: forced ? COLORS.forced : s.actionable ? (up ? COLORS.upAct : COLORS.downAct) : (up ? COLORS.upLate : COLORS.downLate),
      text: forced ? 'F' : s.rule, size: s.actionable ? 1.2 : 0.9,
    });
  }
  for (const d of state.decisions) {
    const bar = barAt(d.known_at);
    if (!bar) continue;
    const long = d.direction === 'long';
    list.push({ time: at.get(bar.time), position: long ? 'belowBar' : 'aboveBar', shape: long ? 'arrowUp' : 'arrowDown',
      color: COLORS.decision, text: long ? 'LONG' : 'SHORT', size: 1.4 });
  }
  for (const l of state.labels) {
    if (!at.has(l.time)) continue;
    list.push({ time: at.get(l.time), position: l.direction === 'up' ? 'belowBar' : 'aboveBar', shape: 'square',
      color: COLORS.label, text: 'L', size: 0.8 });
  }
  list.sort((a, b) => a.time - b.time);
  markers.setMarkers(list);
  window.mechtrade.shownMarkers = list;
}

async function loadMarkers() {
  if (!state.bars.length) { state.starts = state.decisions = state.labels = []; drawMarkers(); return; }
  const m = await getJson('/api/markers?' + query({ from: state.bars[0].time }));
  Object.assign(state, { starts: m.starts, decisions: m.decisions, labels: m.labels, trades: m.trades });
  drawMarkers();
  await loadScore();
}

async function loadScore() {
  if (!state.labels.length) { $('score').textContent = ''; return; }
  const rows = await getJson('/api/score?' + query());
  const total = (kind) => rows.find((r) => r.score === kind && r.direction === 'total');
  const h = total('hindsight'), a = total('actionable');
  $('score').textContent = `${state.profile} against ${h.labels} hand label(s): hindsight F1 ${h.f1.toFixed(3)}`
    + ` (P ${h.precision.toFixed(3)}, R ${h.recall.toFixed(3)}), actionable F1 ${a.f1.toFixed(3)}`
    + (a.median_delay_bars == null ? '' : `, median delay ${a.median_delay_bars} bar(s)`);
}

async function loadAll() {
  state.ready = false;
  status('');
  const url = new URL(location.href);
  for (const k of ['contract', 'timeframe', 'profile', 'tz']) url.searchParams.set(k, state[k] ?? '');
  history.replaceState(null, '', url);
  $('export').href = '/api/labels.csv?' + query();
  $('time-title').textContent = `time: ${zoneName()}${state.tz === 'exchange' ? ' (exchange time)' : ''}`;
  if (!state.contract) { status('no contracts with bars in the database yet'); return; }
  state.bars = await getJson('/api/bars?' + query());
  state.byTime = new Map(state.bars.map((b) => [b.time, b]));
  drawBars();
  await loadMarkers();
  chart.timeScale().fitContent();
  if (state.bars.length > 200) chart.timeScale().setVisibleLogicalRange({ from: state.bars.length - 200, to: state.bars.length + 4 });
  if (!state.bars.length) status(`no ${state.timeframe} bars of ${state.contract}`);
  state.loads += 1;
  state.ready = true;
  listen();
}

// --- live ----------------------------------------------------------------------------------
let source = null;
function setLive(on) {
  state.live = on;
  $('live').className = on ? 'on' : 'off';
}
function listen() {
  if (source) source.close();
  const last = state.bars.length ? state.bars[state.bars.length - 1].time : '';
  source = new EventSource('/api/events?' + query({ since: last }));
  source.addEventListener('hello', () => setLive(true));
  source.onerror = () => setLive(false);
  source.addEventListener('bars', (e) => { state.liveEvents += 1; applyBars(JSON.parse(e.data)); });
  for (const kind of ['signals', 'decisions', 'labels']) {
    source.addEventListener(kind, () => { state.liveEvents += 1; loadMarkers().catch((err) => status(err.message)); });
  }
  source.addEventListener('resync', () => { if (state.ready) loadMarkers().catch((err) => status(err.message)); });
}
function applyBars(rows) {
  for (const b of rows) {
    state.barsReceived += 1;
    const last = state.bars[state.bars.length - 1];
    if (last && b.time < last.time) {  // an older bar changed: redraw everything
      const i = state.bars.findIndex((x) => x.time === b.time);
      if (i >= 0) state.bars[i] = b;
      state.byTime.set(b.time, b);
      drawBars();
      continue;
    }
    if (last && b.time === last.time) state.bars[state.bars.length - 1] = b; else state.bars.push(b);
    state.byTime.set(b.time, b);
    const time = last && b.time === last.time ? state.shownAt.get(b.time) : shown(b.time);
    candles.update({ time, open: b.open, high: b.high, low: b.low, close: b.close });
    volume.update(volumeBar(b, time));
  }
  drawMarkers();
  showLegend(state.bars[state.bars.length - 1]);
}

// --- legend and tooltip ----------------------------------------------------------------------
function showLegend(b) {
  if (!b) { $('legend').textContent = ''; return; }
  const ch = b.close - b.open;
  $('legend').textContent = `${state.contract} ${state.timeframe} · ${fmt(b.time)} · O ${b.open} H ${b.high} L ${b.low}`
    + ` C ${b.close} (${ch >= 0 ? '+' : ''}${ch.toFixed(2)}) · volume ${b.volume}${b.is_closed ? '' : ' · forming'}`;
}
function describe(t) {
  const lines = [];
  for (const s of state.starts.filter((x) => x.time === t)) {
    const kind = s.rule === 'FORCED' ? 'forced (known only when the next opposite start confirmed)'
      : s.actionable ? 'actionable' : `confirmed late (${s.delay_bars} bars)`;
    lines.push(`<b>${s.direction} start</b> at ${s.price} · rule ${s.rule}${s.rule_name ? ' ' + s.rule_name : ''}`
      + `<br>confirmed by the bar of ${fmt(s.confirmed_at)}, known ${s.known_at ? fmt(s.known_at) : '?'}`
      + ` (${s.delay_bars} bar(s) later) · ${kind}`);
  }
  const bar = state.byTime.get(t);
  for (const d of state.decisions.filter((x) => barAt(x.known_at) === bar)) {
    lines.push(`<b>${d.direction.toUpperCase()}</b> (${d.rule}) at ${d.price}, known ${fmt(d.known_at)}<br>${d.reason}`);
  }
  for (const l of state.labels.filter((x) => x.time === t)) lines.push(`<b>label</b> ${l.direction} start by ${l.author}`);
  return lines;
}
chart.subscribeCrosshairMove((p) => {
  const tip = $('tooltip');
  if (!p.time || !p.point) { tip.hidden = true; showLegend(state.bars[state.bars.length - 1]); return; }
  const t = state.toUtc.get(p.time);
  showLegend(state.byTime.get(t));
  const lines = describe(t);
  if (!lines.length) { tip.hidden = true; return; }
  tip.innerHTML = lines.map((x) => `<div>${x}</div>`).join('');
  tip.hidden = false;
  const box = $('chart').getBoundingClientRect();
  tip.style.left = `${Math.min(p.point.x + 16, box.width - 370)}px`;
  tip.style.top = `${Math.max(p.point.y - 20, 0)}px`;
});

// --- labelling -----------------------------------------------------------------------------
function setLabelMode(on) {
  state.labelMode = on;
  $('label-mode').classList.toggle('on', on);
  $('chart').classList.toggle('labelling', on);
}
// DOM clicks, not the chart's click event: that one swallows the second of two quick clicks
// (a double click), and labelling is quick clicking.
$('chart').addEventListener('click', async (e) => {
  if (!state.labelMode) return;
  const box = $('chart').getBoundingClientRect();
  const x = e.clientX - box.left, y = e.clientY - box.top;
  if (x > chart.timeScale().width() || y > box.height - chart.timeScale().height()) return;  // on an axis
  const shownTime = chart.timeScale().coordinateToTime(x);
  const t = state.toUtc.get(shownTime);
  const bar = state.byTime.get(t);
  if (!bar) return;
  const price = candles.coordinateToPrice(y);
  const direction = price >= (bar.high + bar.low) / 2 ? 'down' : 'up';
  const exists = state.labels.some((l) => l.time === t && l.direction === direction);
  window.mechtrade.lastClick = { x, y, time: t, price, direction, remove: exists };
  try {
    await getJson('/api/labels', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ contract: state.contract, timeframe: state.timeframe, time: t, direction,
        action: exists ? 'remove' : 'add', author: $('author').value }),
    });
    await loadMarkers();
  } catch (err) { status(err.message); }
});
$('label-mode').onclick = () => setLabelMode(!state.labelMode);
document.addEventListener('keydown', (e) => {
  if (e.key.toLowerCase() === 'l' && !['INPUT', 'SELECT'].includes(document.activeElement.tagName)) setLabelMode(!state.labelMode);
});
$('import').onchange = async (e) => {
  const file = e.target.files[0];
  if (!file) return;
  try {
    const r = await getJson('/api/labels/import?' + query({ author: $('author').value }), { method: 'POST', body: await file.text() });
    status(`${file.name}: ${r.read} read, ${r.added} added, ${r.already_there} already there`
      + (r.without_bar ? `, ${r.without_bar} on no bar of this series` : ''));
    await loadMarkers();
  } catch (err) { status(err.message); }
  e.target.value = '';
};

// --- controls ------------------------------------------------------------------------------
function fill(select, values, chosen, labels = {}) {
  select.innerHTML = '';
  for (const v of values) select.add(new Option(labels[v] || v, v, false, v === chosen));
}
async function start() {
  const info = await getJson('/api/series');
  state.info = info;
  const params = new URLSearchParams(location.search);
  state.contract = params.get('contract') || info.contract;
  state.timeframe = params.get('timeframe') || info.timeframe;
  state.profile = params.get('profile') || info.profile;
  state.tz = params.get('tz') || 'exchange';
  const contracts = info.contracts.includes(state.contract) || !state.contract ? info.contracts : [state.contract, ...info.contracts];
  fill($('contract'), contracts, state.contract);
  fill($('timeframe'), info.timeframes, state.timeframe);
  fill($('profile'), info.profiles, state.profile);
  fill($('tz'), ['exchange', 'utc', 'local'], state.tz, {
    exchange: `exchange (${info.exchange_time_zone})`, utc: 'UTC',
    local: `local (${Intl.DateTimeFormat().resolvedOptions().timeZone})`,
  });
  $('author').value = info.author;
  for (const k of ['contract', 'timeframe', 'profile', 'tz']) {
    $(k).onchange = () => { state[k] = $(k).value; loadAll().catch((err) => status(err.message)); };
  }
  await loadAll();
}
start().catch((err) => status(err.message));
