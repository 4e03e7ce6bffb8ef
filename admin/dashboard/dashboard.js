// sioproxy dashboard. Reads GET /overview every second (only the history samples it lacks), and
// calls the admin API for drains, undrains and the mirror. No library, no build step.
'use strict';

(() => {
  const POLL_MS = 1000;
  const TIMEOUT_MS = 2500; // a request slower than this counts as the proxy not answering
  const WINDOW_MS = 5 * 60 * 1000; // the charts' longest span (the proxy keeps as much)
  const MIN_SPAN_MS = 60 * 1000; // and their shortest
  const MIRROR_EVERY = 2; // mirror report every second poll
  const COLORS = ['#2f6fdb', '#e0672b', '#1e9e6a', '#b5369a', '#c7a206', '#5b5fc7', '#0f9bb5', '#8a5a2b',
    '#d6334f', '#5a8f29', '#7b61c9', '#3d7d99'];
  const TOKEN_KEY = 'sioproxy.admin.token';

  const $ = (sel) => document.querySelector(sel);
  const SVG = 'http://www.w3.org/2000/svg';

  const state = {
    token: sessionStorage.getItem(TOKEN_KEY) || '',
    hist: null, // {seq, t: [], sessions: {id: []}, handshakes: [], sid_unknown: [], unavailable: [], reloads: []}
    last: null, // the last overview
    lastOK: 0, // when the proxy last answered (ms)
    downSince: 0,
    polls: 0,
    timer: 0,
    needAuth: false,
    polling: false,
    again: false,
    colors: new Map(),
  };

  // ---- requests ------------------------------------------------------------------------------

  class APIError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function api(method, path) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), TIMEOUT_MS);
    const headers = {};
    if (state.token) headers.Authorization = 'Bearer ' + state.token;
    let resp;
    try {
      resp = await fetch(path, { method, headers, cache: 'no-store', signal: ctl.signal, credentials: 'omit' });
    } catch (e) {
      throw new APIError(0, ctl.signal.aborted ? 'no answer in ' + TIMEOUT_MS / 1000 + ' s' : 'unreachable');
    } finally {
      clearTimeout(timer);
    }
    let body = null;
    try { body = await resp.json(); } catch (e) { body = null; }
    if (!resp.ok) throw new APIError(resp.status, (body && body.error) || resp.statusText || String(resp.status));
    return body;
  }

  // ---- connection state ----------------------------------------------------------------------

  function setConn(kind, text) {
    const el = $('#conn');
    el.dataset.state = kind;
    el.textContent = text;
  }

  function clock(ms) {
    return new Date(ms).toLocaleTimeString([], { hour12: false });
  }

  function showDown(err) {
    if (!state.downSince) state.downSince = Date.now();
    const since = state.lastOK ? 'since ' + clock(state.lastOK) : '';
    setConn('down', 'proxy not answering ' + since + ' (' + err.message + ')');
    document.body.classList.add('down');
  }

  function showAuth(message) {
    state.needAuth = true;
    setConn('auth', 'token needed');
    $('#auth').hidden = false;
    $('#main').hidden = true;
    $('#logout').hidden = true;
    $('#auth-msg').textContent = message || '';
    $('#token').focus();
  }

  function toast(text) {
    const el = $('#toast');
    el.textContent = text;
    el.classList.add('show');
    clearTimeout(toast.t);
    toast.t = setTimeout(() => el.classList.remove('show'), 3000);
  }

  // ---- polling -------------------------------------------------------------------------------

  // poll asks for an overview now; a call while one is under way makes it run again when done, so
  // that two answers are never merged out of order.
  function poll() {
    if (state.polling) {
      state.again = true;
      return;
    }
    state.polling = true;
    pollOnce().finally(() => {
      state.polling = false;
      if (state.again) {
        state.again = false;
        poll();
      }
    });
  }

  async function pollOnce() {
    clearTimeout(state.timer);
    if (state.needAuth) return;
    const since = state.hist ? state.hist.seq : 0;
    try {
      const ov = await api('GET', '/overview?since=' + since);
      state.lastOK = Date.now();
      state.downSince = 0;
      document.body.classList.remove('down');
      $('#auth').hidden = true;
      $('#main').hidden = false;
      $('#logout').hidden = !state.token;
      merge(ov.history);
      state.last = ov;
      render(ov);
      setConn('live', 'live');
      $('#updated').textContent = 'updated ' + clock(ov.time);
      if (ov.mirror && state.polls % MIRROR_EVERY === 0) mirrorReport();
      $('#mirror').hidden = !ov.mirror;
      state.polls++;
    } catch (e) {
      if (e.status === 401) {
        const had = !!state.token;
        forgetToken();
        showAuth(had ? 'The token was refused: ' + e.message : '');
        return;
      }
      showDown(e);
    }
    state.timer = setTimeout(poll, POLL_MS);
  }

  function forgetToken() {
    state.token = '';
    sessionStorage.removeItem(TOKEN_KEY);
  }

  // merge adds the samples of an overview's history to what the page has, or replaces it when the
  // proxy's history does not continue it (first load, a gap, a restarted process).
  function merge(h) {
    const cols = ['handshakes', 'sid_unknown', 'unavailable', 'reloads'];
    const cur = state.hist;
    if (!cur || h.from !== cur.seq + 1) {
      state.hist = { seq: h.seq, t: h.t.slice(), sessions: {} };
      for (const c of cols) state.hist[c] = h[c].slice();
      for (const [id, s] of Object.entries(h.sessions)) state.hist.sessions[id] = s.slice();
    } else {
      const n = h.t.length;
      const before = cur.t.length;
      cur.seq = h.seq;
      cur.t.push(...h.t);
      for (const c of cols) cur[c].push(...h[c]);
      for (const [id, s] of Object.entries(h.sessions)) {
        if (!cur.sessions[id]) cur.sessions[id] = new Array(before).fill(null);
        cur.sessions[id].push(...s);
      }
      for (const [id, s] of Object.entries(cur.sessions)) {
        if (!h.sessions[id]) for (let i = 0; i < n; i++) s.push(null);
      }
    }
    // Keep the charts' span only.
    const hist = state.hist;
    const cut = hist.t.length ? hist.t[hist.t.length - 1] - WINDOW_MS : 0;
    let drop = 0;
    while (drop < hist.t.length && hist.t[drop] < cut) drop++;
    if (drop > 0) {
      hist.t.splice(0, drop);
      for (const c of cols) hist[c].splice(0, drop);
      for (const [id, s] of Object.entries(hist.sessions)) {
        s.splice(0, drop);
        if (s.every((v) => v === null)) delete hist.sessions[id];
      }
    }
  }

  // ---- rendering -----------------------------------------------------------------------------

  const fmtInt = (n) => Number(n).toLocaleString('en-US');
  const fmtRate = (r) => (r >= 100 ? Math.round(r).toLocaleString('en-US') : r.toFixed(1));

  function colorOf(id) {
    if (!state.colors.has(id)) state.colors.set(id, COLORS[state.colors.size % COLORS.length]);
    return state.colors.get(id);
  }

  function render(ov) {
    const t = ov.totals;
    $('#total-sessions').textContent = fmtInt(t.sessions);
    $('#total-tunnels').textContent = fmtInt(t.tunnels);
    $('#total-inflight').textContent = fmtInt(t.in_flight);
    setRate('#rate-handshakes', ov.rates.handshakes, false);
    setRate('#rate-sid-unknown', ov.rates.sid_unknown, true);
    setRate('#rate-unavailable', ov.rates.unavailable, true);
    $('#reloads').textContent = fmtInt(ov.rates.reloads);
    $('#reloads-sub').textContent = 'in the last ' + Math.round(WINDOW_MS / 60000) + ' min; ' +
      fmtInt(t.reloads) + ' in all, ' + fmtInt(t.reload_errors) + ' refused';
    for (const be of [...ov.backends].sort((a, b) => a.id.localeCompare(b.id))) colorOf(be.id);
    renderBackends(ov.backends);
    renderChart(ov);
    renderIncidents();
  }

  function setRate(sel, r, alarming) {
    const el = $(sel);
    el.textContent = fmtRate(r);
    el.dataset.value = String(r);
    el.parentElement.classList.toggle('alert', alarming && r > 0);
  }

  const FIELDS = [
    ['id', 'Backend'], ['source', 'Source'], ['status', 'State'], ['weight', 'Weight'], ['sessions', 'Sessions'],
    ['tunnels', 'Tunnels'], ['in_flight', 'In flight'], ['failures', 'Failures'], ['tag', 'Tag'], ['actions', ''],
  ];
  const NUMERIC = new Set(['weight', 'sessions', 'tunnels', 'in_flight', 'failures']);

  function statusText(be) {
    switch (be.status) {
      case 'slow_start': return 'slow start ' + Math.round(be.share * 100) + '%';
      case 'ejected': return 'ejected ' + Math.ceil(be.ejected_ms / 1000) + ' s';
      default: return be.status;
    }
  }

  function renderBackends(list) {
    const tbody = $('#backends tbody');
    const seen = new Set();
    for (const be of list) {
      seen.add(be.id);
      let tr = tbody.querySelector('tr[data-id="' + CSS.escape(be.id) + '"]');
      if (!tr) {
        tr = document.createElement('tr');
        tr.dataset.id = be.id;
        for (const [f, label] of FIELDS) {
          const td = document.createElement('td');
          td.dataset.field = f;
          td.dataset.label = label;
          if (NUMERIC.has(f)) td.className = 'num';
          tr.appendChild(td);
        }
        const idCell = tr.querySelector('[data-field="id"]');
        const name = document.createElement('span');
        name.className = 'name';
        const addr = document.createElement('span');
        addr.className = 'addr';
        idCell.append(name, addr);
        const actions = tr.querySelector('[data-field="actions"]');
        const drain = document.createElement('button');
        drain.type = 'button';
        drain.className = 'drain secondary';
        drain.textContent = 'Drain…';
        drain.addEventListener('click', () => openDrain(be.id));
        const undrain = document.createElement('button');
        undrain.type = 'button';
        undrain.className = 'undrain';
        undrain.textContent = 'Undrain';
        undrain.addEventListener('click', () => undrainBackend(be.id, undrain));
        actions.append(drain, undrain);
        tbody.appendChild(tr);
      }
      tr.dataset.status = be.status;
      tr.querySelector('.name').textContent = be.id;
      tr.querySelector('.addr').textContent = be.address;
      tr.querySelector('.name').style.borderLeft = '4px solid ' + colorOf(be.id);
      tr.querySelector('.name').style.paddingLeft = '.4rem';
      const cell = (f) => tr.querySelector('[data-field="' + f + '"]');
      cell('source').textContent = be.source;
      let badge = cell('status').querySelector('.badge');
      if (!badge) {
        badge = document.createElement('span');
        cell('status').appendChild(badge);
      }
      badge.className = 'badge ' + be.status;
      badge.textContent = statusText(be);
      for (const f of NUMERIC) {
        cell(f).textContent = fmtInt(be[f]);
        cell(f).dataset.value = String(be[f]);
      }
      cell('tag').textContent = be.tag || '–';
      tr.querySelector('button.drain').hidden = be.state === 'draining';
      tr.querySelector('button.undrain').hidden = be.state !== 'draining';
    }
    for (const tr of [...tbody.querySelectorAll('tr[data-id]')]) {
      if (!seen.has(tr.dataset.id)) tr.remove();
    }
    $('#backend-count').textContent = '(' + list.length + ')';
  }

  // ---- charts --------------------------------------------------------------------------------

  function el(name, attrs, parent) {
    const e = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (parent) parent.appendChild(e);
    return e;
  }

  function niceMax(v) {
    if (v <= 4) return 4;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  // drawAxes clears svg and draws the frame of a chart over [t0, t1] x [0, ymax]; it returns the
  // coordinate functions.
  function drawAxes(svg, t0, t1, ymax) {
    const w = Math.max(svg.clientWidth, 200);
    const h = Math.max(svg.clientHeight, 80);
    svg.setAttribute('viewBox', '0 0 ' + w + ' ' + h);
    svg.replaceChildren();
    const left = 44, right = 8, top = 8, bottom = 18;
    const x = (t) => left + (t - t0) / (t1 - t0) * (w - left - right);
    const y = (v) => top + (1 - v / ymax) * (h - top - bottom);
    for (let i = 0; i <= 4; i++) {
      const v = ymax * i / 4;
      el('line', { x1: left, x2: w - right, y1: y(v), y2: y(v), class: 'grid' }, svg);
      const label = el('text', { x: left - 6, y: y(v) + 4, 'text-anchor': 'end' }, svg);
      label.textContent = v >= 100 ? Math.round(v) : +v.toFixed(1);
    }
    const dur = t1 - t0;
    const step = [10e3, 15e3, 30e3, 60e3, 120e3].find((s) => dur / s <= 6) || 300e3;
    for (let k = 0; t1 - k * step >= t0 - 1; k++) {
      const ago = k * step;
      const label = el('text', { x: x(t1 - ago), y: h - 4, 'text-anchor': k === 0 ? 'end' : 'middle' }, svg);
      label.textContent = k === 0 ? 'now' : ago < 60e3 ? '-' + ago / 1000 + ' s' : '-' + ago / 60e3 + ' min';
    }
    return { x, y };
  }

  // span is the time the charts show: the history the page has, from one to five minutes.
  function span(t1) {
    const h = state.hist;
    const first = h.t.length ? h.t[0] : t1;
    return Math.max(t1 - WINDOW_MS, Math.min(first, t1 - MIN_SPAN_MS));
  }

  function line(svg, xs, ys, color, attrs) {
    let d = '';
    let pen = false;
    for (let i = 0; i < xs.length; i++) {
      if (ys[i] === null || ys[i] === undefined) { pen = false; continue; }
      d += (pen ? 'L' : 'M') + xs[i].toFixed(1) + ' ' + ys[i].toFixed(1);
      pen = true;
    }
    return el('path', { d: d || 'M0 0', stroke: color, class: 'line', ...attrs }, svg);
  }

  function renderChart(ov) {
    const svg = $('#chart');
    const h = state.hist;
    const t1 = ov.time;
    const t0 = span(t1);
    let ymax = 0;
    for (const s of Object.values(h.sessions)) for (const v of s) if (v !== null && v > ymax) ymax = v;
    const { x, y } = drawAxes(svg, t0, t1, niceMax(ymax));
    h.reloads.forEach((n, i) => {
      if (n > 0) el('line', { x1: x(h.t[i]), x2: x(h.t[i]), y1: 0, y2: y(0), class: 'reload' }, svg);
    });
    const xs = h.t.map(x);
    const legend = $('#legend');
    legend.replaceChildren();
    const ids = Object.keys(h.sessions).sort();
    for (const id of ids) {
      const s = h.sessions[id];
      line(svg, xs, s.map((v) => (v === null ? null : y(v))), colorOf(id), { 'data-id': id });
      const item = document.createElement('span');
      const sw = document.createElement('span');
      sw.className = 'sw';
      sw.style.background = colorOf(id);
      const now = s[s.length - 1];
      item.append(sw, id + ' ' + (now === null ? '–' : fmtInt(now)));
      legend.appendChild(item);
    }
    const first = h.t.length ? h.t[0] : t1;
    $('#chart-span').textContent = 'last ' + Math.max(1, Math.round((t1 - first) / 1000)) + ' s' +
      (h.reloads.some((n) => n > 0) ? ' · dashed: reload' : '');
  }

  const INCIDENTS = [
    ['handshakes', 'handshakes/s', '#2f6fdb'],
    ['sid_unknown', '“Session ID unknown”/s', '#e0672b'],
    ['unavailable', '503/s', '#c2272d'],
  ];

  function renderIncidents() {
    const svg = $('#incidents');
    const h = state.hist;
    const t1 = state.last.time;
    const t0 = span(t1);
    const perSec = {};
    let ymax = 0;
    for (const [key] of INCIDENTS) {
      perSec[key] = h[key].map((n, i) => {
        if (i === 0) return null;
        const dt = (h.t[i] - h.t[i - 1]) / 1000;
        const r = dt > 0 ? n / dt : 0;
        if (r > ymax) ymax = r;
        return r;
      });
    }
    const { x, y } = drawAxes(svg, t0, t1, niceMax(ymax));
    const xs = h.t.map(x);
    const legend = $('#incidents-legend');
    legend.replaceChildren();
    for (const [key, label, color] of INCIDENTS) {
      line(svg, xs, perSec[key].map((v) => (v === null ? null : y(v))), color, { 'data-series': key });
      const item = document.createElement('span');
      const sw = document.createElement('span');
      sw.className = 'sw';
      sw.style.background = color;
      item.append(sw, label);
      legend.appendChild(item);
    }
  }

  // ---- actions -------------------------------------------------------------------------------

  let drainTarget = '';

  function openDrain(id) {
    drainTarget = id;
    $('#drain-id').textContent = id;
    $('#drain-error').textContent = '';
    $('#drain-dialog').showModal();
    $('#drain-deadline').focus();
  }

  async function submitDrain(ev) {
    ev.preventDefault();
    const q = new URLSearchParams();
    const deadline = $('#drain-deadline').value.trim();
    if (deadline) {
      q.set('deadline', deadline);
      const rate = $('#drain-rate').value.trim();
      if (rate) q.set('rate', rate);
    }
    const path = '/backends/' + encodeURIComponent(drainTarget) + '/drain' + (deadline ? '?' + q : '');
    $('#drain-ok').disabled = true;
    try {
      await api('POST', path);
      $('#drain-dialog').close();
      toast(drainTarget + ' draining' + (deadline ? ', sessions closed after ' + deadline : ''));
      poll();
    } catch (e) {
      if (e.status === 401) {
        $('#drain-dialog').close();
        forgetToken();
        showAuth('The token was refused: ' + e.message);
      } else {
        $('#drain-error').textContent = e.message;
      }
    } finally {
      $('#drain-ok').disabled = false;
    }
  }

  async function undrainBackend(id, button) {
    button.disabled = true;
    try {
      await api('POST', '/backends/' + encodeURIComponent(id) + '/undrain');
      toast(id + ' takes new sessions again');
      poll();
    } catch (e) {
      failed(e);
    } finally {
      button.disabled = false;
    }
  }

  function failed(e) {
    if (e.status === 401) {
      forgetToken();
      showAuth('The token was refused: ' + e.message);
      return;
    }
    toast('refused: ' + e.message);
  }

  // ---- mirror --------------------------------------------------------------------------------

  async function mirrorReport() {
    let r;
    try {
      r = await api('GET', '/mirror/report');
    } catch (e) {
      $('#mirror-msg').textContent = e.message;
      return;
    }
    $('#mirror-msg').textContent = '';
    const st = $('#mirror-state');
    st.textContent = r.enabled ? 'enabled, sample ' + r.sample : 'disabled';
    st.className = 'badge ' + (r.enabled ? 'on' : 'off');
    st.dataset.enabled = String(r.enabled);
    $('#mirror-targets').textContent = 'shadow: ' + ((r.targets || []).join(', ') || 'no target');
    const ms = (v) => (+v).toFixed(1) + ' ms';
    const totals = [
      ['sessions mirrored', r.sessions.mirrored], ['active', r.sessions.active],
      ['skipped', r.sessions.skipped], ['shadow failures', r.sessions.shadow_failures],
      ['packets replayed', r.packets.replayed], ['packets dropped', r.packets.dropped],
      ['acks same', r.acks.same], ['acks different', r.acks.different],
      ['missing on shadow', r.acks.missing_shadow], ['missing on primary', r.acks.missing_primary],
      ['ack p50 primary', ms(r.latency_ms.primary.p50)], ['ack p50 shadow', ms(r.latency_ms.shadow.p50)],
      ['ack p99 primary', ms(r.latency_ms.primary.p99)], ['ack p99 shadow', ms(r.latency_ms.shadow.p99)],
    ];
    const dl = $('#mirror-totals');
    dl.replaceChildren();
    for (const [k, v] of totals) {
      const div = document.createElement('div');
      const dt = document.createElement('dt');
      dt.textContent = k;
      const dd = document.createElement('dd');
      dd.textContent = typeof v === 'number' ? fmtInt(v) : v;
      dd.dataset.key = k;
      div.append(dt, dd);
      dl.appendChild(div);
    }
    fillRows('#mirror-divergent tbody', r.divergent || [],
      (e) => [e.event, e.different, e.missing_shadow, e.missing_primary, e.primary_events, e.shadow_events]);
    $('#mirror-none').hidden = (r.divergent || []).length > 0;
    fillRows('#mirror-samples tbody', r.samples || [], (s) => [s.event, s.primary, s.shadow], true);
    fillRows('#mirror-events tbody', r.events || [],
      (e) => [e.event, e.same, e.different, e.missing_shadow, e.missing_primary]);
  }

  function fillRows(sel, items, cells, payload) {
    const tbody = $(sel);
    tbody.replaceChildren();
    for (const it of items) {
      const tr = document.createElement('tr');
      cells(it).forEach((v, i) => {
        const td = document.createElement('td');
        if (typeof v === 'number') {
          td.className = 'num';
          td.textContent = fmtInt(v);
        } else {
          td.textContent = v;
          if (payload && i > 0) td.className = 'payload';
        }
        tr.appendChild(td);
      });
      tbody.appendChild(tr);
    }
  }

  async function mirrorAction(path, button) {
    button.disabled = true;
    try {
      await api('POST', path);
      $('#mirror-msg').textContent = '';
      await mirrorReport();
    } catch (e) {
      if (e.status === 401) failed(e);
      else $('#mirror-msg').textContent = e.message;
    } finally {
      button.disabled = false;
    }
  }

  // ---- wiring --------------------------------------------------------------------------------

  function init() {
    $('#token-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      state.token = $('#token').value.trim();
      $('#token').value = '';
      sessionStorage.setItem(TOKEN_KEY, state.token);
      state.needAuth = false;
      $('#auth-msg').textContent = '';
      setConn('loading', 'connecting…');
      poll();
    });
    $('#logout').addEventListener('click', () => {
      forgetToken();
      showAuth('');
    });
    $('#drain-form').addEventListener('submit', submitDrain);
    $('#drain-cancel').addEventListener('click', () => $('#drain-dialog').close());
    $('#mirror-enable').addEventListener('click', (ev) => {
      const s = $('#mirror-sample').value.trim();
      mirrorAction('/mirror/enable' + (s ? '?sample=' + encodeURIComponent(s) : ''), ev.currentTarget);
    });
    $('#mirror-disable').addEventListener('click', (ev) => mirrorAction('/mirror/disable', ev.currentTarget));
    window.addEventListener('resize', () => { if (state.last) { renderChart(state.last); renderIncidents(); } });
    poll();
  }

  init();
})();
