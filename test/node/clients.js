#!/usr/bin/env node
// Real socket.io-client sessions against a URL, for the sioproxy end-to-end tests.
//
//   node clients.js --url http://127.0.0.1:PORT --mode polling|upgrade|websocket --n 100 --emits 5
//                   --version 4|2 [--concurrency 50] [--timeout-ms 30000] [--hold-ms N] [--local-address IP] [--origin URL]
//
// --local-address binds every connection of the clients (polling and WebSocket) to that local
// address (a 127.0.0.x other than 127.0.0.1, to tell clients apart behind a proxy). An https or wss
// URL is verified against Node's CAs plus NODE_EXTRA_CA_CERTS.
// --origin URL sends `Origin: URL` with every polling request and WebSocket handshake, as a browser
// page of that origin does (servers that check the origin, like python-socketio's default, see it).
//
// Run mode (default): each session connects, sends `emits` acked `echo` events, one binary round trip
// via `bin`, waits for the upgrade in upgrade mode, asks `whoami` and disconnects. Any disconnect,
// connect_error or reconnect attempt before the end is an error of that session.
//
// Hold mode (--hold-ms N): all sessions connect (printing {"event":"all_connected"} on stderr), then
// each emits `echo` every second for N ms (or until SIGINT/SIGTERM), reconnecting as Socket.IO does.
// Per session it reports disconnects (time, reason), reconnects (time, backend) and acks by backend.
// Progress on stderr (JSON lines): all_connected, all_acked, and acks {minLastAckAt} whenever the
// oldest last-ack time over all sessions moves.
//
// stdout: one JSON summary. The exit code is 0 even when sessions fail: the caller asserts.
'use strict';

function parseArgs(argv) {
  const out = { url: '', mode: 'upgrade', n: 100, emits: 5, version: '4', concurrency: 50, timeoutMs: 30000, holdMs: 0, localAddress: '', origin: '' };
  for (let i = 2; i < argv.length; i++) {
    const k = argv[i];
    const v = argv[i + 1];
    i++;
    switch (k) {
      case '--url': out.url = v; break;
      case '--mode': out.mode = v; break;
      case '--n': out.n = Number(v); break;
      case '--emits': out.emits = Number(v); break;
      case '--version': out.version = String(v); break;
      case '--concurrency': out.concurrency = Number(v); break;
      case '--timeout-ms': out.timeoutMs = Number(v); break;
      case '--hold-ms': out.holdMs = Number(v); break;
      case '--local-address': out.localAddress = v; break;
      case '--origin': out.origin = v; break;
      default:
        process.stderr.write(`clients.js: unknown argument ${k}\n`);
        process.exit(2);
    }
  }
  if (!out.url || !['polling', 'upgrade', 'websocket'].includes(out.mode) || !['2', '4'].includes(out.version)) {
    process.stderr.write('usage: node clients.js --url URL --mode polling|upgrade|websocket --n N --emits E --version 4|2\n');
    process.exit(2);
  }
  return out;
}

const args = parseArgs(process.argv);
const progress = (obj) => process.stderr.write(JSON.stringify(obj) + '\n');

function transportsFor(mode) {
  switch (mode) {
    case 'polling': return ['polling'];
    case 'websocket': return ['websocket'];
    default: return ['polling', 'websocket'];
  }
}

// agentFor returns the HTTP(S) agent that binds the clients' connections to --local-address, one per
// process; both socket.io-client versions pass `agent` to their polling and WebSocket transports.
let sharedAgent;
function agentFor() {
  if (!args.localAddress) return undefined;
  if (!sharedAgent) {
    const mod = /^(https|wss):/.test(args.url) ? require('https') : require('http');
    sharedAgent = new mod.Agent({ localAddress: args.localAddress, keepAlive: true, maxSockets: Infinity });
  }
  return sharedAgent;
}

// connect returns a socket.io client socket, v4 or v2, with automatic reconnection on.
function connect() {
  const common = {
    transports: transportsFor(args.mode),
    forceNew: true,
    reconnection: true,
    timeout: 20000,
  };
  const agent = agentFor();
  if (agent) common.agent = agent;
  if (args.origin) common.extraHeaders = { Origin: args.origin };
  if (args.version === '4') {
    const { io } = require('socket.io-client');
    return io(args.url, { ...common, upgrade: args.mode === 'upgrade', rememberUpgrade: false });
  }
  const io = require('socket.io-client-v2');
  return io(args.url, { ...common, upgrade: args.mode === 'upgrade', rememberUpgrade: false });
}

// engineOf returns the Engine.IO client socket under a Socket.IO socket (same path in v2 and v4).
const engineOf = (socket) => socket.io.engine;

function toBuffer(x) {
  if (Buffer.isBuffer(x)) return x;
  if (x instanceof ArrayBuffer) return Buffer.from(new Uint8Array(x));
  if (ArrayBuffer.isView(x)) return Buffer.from(x.buffer, x.byteOffset, x.byteLength);
  return null;
}

// emitAck emits an event and resolves with the ack arguments, or rejects after ms.
function emitAck(socket, ms, event, ...payload) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${event}: no ack within ${ms} ms`)), ms);
    socket.emit(event, ...payload, (...ackArgs) => {
      clearTimeout(timer);
      resolve(ackArgs);
    });
  });
}

function waitFor(socket, ms, predicate, subscribe, what) {
  return new Promise((resolve, reject) => {
    if (predicate()) return resolve();
    const timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
    subscribe(() => {
      if (predicate()) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

// watchUnexpected records the events that mean the session broke and resolves errors into the list.
function watchUnexpected(socket, errors, state) {
  socket.on('disconnect', (reason) => { if (!state.closing) errors.push(`disconnect: ${reason}`); });
  socket.on('connect_error', (err) => errors.push(`connect_error: ${err && err.message}`));
  socket.io.on('reconnect_attempt', (n) => errors.push(`reconnect_attempt ${n}`));
  socket.on('error', (err) => errors.push(`error: ${err && (err.message || err)}`));
}

async function runSession(id) {
  const started = Date.now();
  const res = { id, ok: false, backends: [], transport: '', sid: '', errors: [], ms: 0 };
  const backends = new Set();
  const state = { closing: false };
  const socket = connect();
  watchUnexpected(socket, res.errors, state);
  const deadline = setTimeout(() => res.errors.push(`session timeout after ${args.timeoutMs} ms`), args.timeoutMs);
  const step = Math.max(1000, Math.floor(args.timeoutMs / 3));
  try {
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`connect: not within ${step} ms`)), step);
      socket.once('connect', () => { clearTimeout(timer); resolve(); });
    });
    res.sid = engineOf(socket).id;
    for (let i = 0; i < args.emits; i++) {
      const data = { i, id, text: `hello ${id}/${i} ✓` };
      const [ack] = await emitAck(socket, step, 'echo', data);
      if (!ack || JSON.stringify(ack.data) !== JSON.stringify(data)) {
        throw new Error(`echo ${i}: wrong ack ${JSON.stringify(ack)}`);
      }
      backends.add(ack.backend);
    }
    const payload = Buffer.alloc(1024 + (id % 97));
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 31 + id) & 0xff;
    const [binAck, binBackend] = await emitAck(socket, step, 'bin', payload);
    const got = toBuffer(binAck);
    if (got === null || !got.equals(payload)) {
      throw new Error(`bin: bytes differ (got ${got === null ? typeof binAck : got.length + ' bytes'}, want ${payload.length})`);
    }
    backends.add(binBackend);
    if (args.mode === 'upgrade') {
      const engine = engineOf(socket);
      await waitFor(socket, 5000, () => engine.transport && engine.transport.name === 'websocket',
        (cb) => engine.on('upgrade', cb), 'upgrade to websocket').catch((err) => res.errors.push(err.message));
    }
    const [who] = await emitAck(socket, step, 'whoami');
    backends.add(who.backend);
    res.transport = who.transport;
    if (who.sid && res.sid && !res.sid.endsWith(who.sid)) {
      res.errors.push(`client sid ${res.sid} does not end with backend sid ${who.sid}`);
    }
  } catch (err) {
    res.errors.push(err.message);
  } finally {
    clearTimeout(deadline);
    state.closing = true;
    socket.close();
  }
  res.backends = [...backends].sort();
  res.ms = Date.now() - started;
  res.ok = res.errors.length === 0 && res.backends.length === 1;
  return res;
}

// pool runs fn(0..n-1) with at most c in flight and returns the results in order.
async function pool(n, c, fn) {
  const results = new Array(n);
  let next = 0;
  async function worker() {
    while (next < n) {
      const i = next++;
      results[i] = await fn(i);
    }
  }
  await Promise.all(Array.from({ length: Math.min(c, n) }, worker));
  return results;
}

function summarize(sessions, extra) {
  const byBackend = {};
  let ok = 0;
  for (const s of sessions) {
    if (s.ok) ok++;
    for (const b of s.backends || []) byBackend[b] = (byBackend[b] || 0) + 1;
  }
  return { ok, failed: sessions.length - ok, ...extra, byBackend, sessions };
}

async function runMode() {
  const started = Date.now();
  const sessions = await pool(args.n, args.concurrency, runSession);
  return summarize(sessions, { mode: args.mode, version: args.version, ms: Date.now() - started });
}

// ---- hold mode ----

function holdSession(id, stop) {
  const s = {
    id, ok: false, backends: [], transport: '', firstBackend: '', lastBackend: '', sid: '',
    connectedAt: 0, disconnects: [], reconnects: [], acks: 0, acksByBackend: {}, lastAckAt: 0,
    errors: [], socket: null,
  };
  const backends = new Set();
  const socket = connect();
  s.socket = socket;
  let pending = false;
  let everConnected = false;
  const connected = new Promise((resolve) => {
    socket.on('connect', () => {
      const now = Date.now();
      s.sid = engineOf(socket).id;
      if (!everConnected) {
        everConnected = true;
        s.connectedAt = now;
        resolve();
      } else {
        const rec = { at: now, backend: '' };
        s.reconnects.push(rec);
        emitAck(socket, 5000, 'whoami').then(([who]) => {
          rec.backend = who.backend;
          noteAck(who.backend);
        }).catch(() => {});
      }
    });
  });
  socket.on('disconnect', (reason) => {
    if (!stop.stopped) s.disconnects.push({ at: Date.now(), reason, backend: s.lastBackend });
  });
  socket.on('connect_error', (err) => {
    if (!stop.stopped) s.errors.push(`connect_error at ${Date.now()}: ${err && err.message}`);
  });
  function noteAck(backend) {
    s.acks++;
    s.lastAckAt = Date.now();
    s.acksByBackend[backend] = (s.acksByBackend[backend] || 0) + 1;
    if (!s.firstBackend) s.firstBackend = backend;
    s.lastBackend = backend;
    backends.add(backend);
    s.transport = engineOf(socket).transport ? engineOf(socket).transport.name : '';
  }
  const tick = setInterval(() => {
    if (stop.stopped || !socket.connected || pending) return;
    pending = true;
    const data = { id, at: Date.now() };
    emitAck(socket, 5000, 'echo', data).then(([ack]) => noteAck(ack.backend)).catch((err) => {
      if (!stop.stopped && socket.connected) s.errors.push(`${err.message} at ${Date.now()}`);
    }).finally(() => { pending = false; });
  }, 1000);
  s.finish = () => {
    clearInterval(tick);
    socket.close();
    s.backends = [...backends].sort();
    delete s.socket;
    delete s.finish;
    s.ok = s.errors.length === 0 && s.acks > 0;
    return s;
  };
  s.connected = connected;
  return s;
}

async function holdMode() {
  const stop = { stopped: false };
  const started = Date.now();
  const sessions = [];
  // Connect in waves of `concurrency` so the handshakes don't all land at once.
  for (let i = 0; i < args.n; i += args.concurrency) {
    const wave = [];
    for (let j = i; j < Math.min(args.n, i + args.concurrency); j++) {
      const s = holdSession(j, stop);
      sessions.push(s);
      wave.push(s.connected);
    }
    const t = new Promise((resolve) => setTimeout(resolve, args.timeoutMs));
    await Promise.race([Promise.all(wave), t]);
  }
  const connectedCount = sessions.filter((s) => s.connectedAt > 0).length;
  progress({ event: 'all_connected', count: connectedCount, n: args.n, at: Date.now() });
  // all_acked: every session has had at least one echo acked (so each knows its backend).
  const acked = new Promise((resolve) => {
    const check = setInterval(() => {
      if (stop.stopped || sessions.every((s) => s.acks > 0)) {
        clearInterval(check);
        resolve();
      }
    }, 50);
  });
  acked.then(() => {
    if (!stop.stopped) progress({ event: 'all_acked', count: sessions.filter((s) => s.acks > 0).length, n: args.n, at: Date.now() });
  });
  // acks: the oldest "last ack" over all sessions, printed when it moves, so the caller can wait until
  // every session has been acked after some instant.
  let lastMin = -1;
  const acksTimer = setInterval(() => {
    if (stop.stopped) { clearInterval(acksTimer); return; }
    const min = Math.min(...sessions.map((s) => s.lastAckAt));
    if (min !== lastMin) {
      lastMin = min;
      progress({ event: 'acks', at: Date.now(), minLastAckAt: min });
    }
  }, 100);
  await new Promise((resolve) => {
    const timer = setTimeout(resolve, args.holdMs);
    const onSignal = () => { clearTimeout(timer); resolve(); };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  });
  stop.stopped = true;
  const done = sessions.map((s) => {
    const connected = s.connectedAt > 0;
    const r = s.finish();
    delete r.connected;
    if (!connected) { r.errors.push('never connected'); r.ok = false; }
    return r;
  });
  return summarize(done, { mode: args.mode, version: args.version, hold: true, connected: connectedCount, ms: Date.now() - started, endedAt: Date.now() });
}

// After the summary the process ends by itself once the sessions' close requests are out (so the
// servers see clean closes, not ping timeouts); a stuck handle gets 5 s before a forced exit.
(args.holdMs > 0 ? holdMode() : runMode()).then((summary) => {
  process.stdout.write(JSON.stringify(summary) + '\n');
  setTimeout(() => process.exit(0), 5000).unref();
}).catch((err) => {
  process.stdout.write(JSON.stringify({ ok: 0, failed: args.n, fatal: String(err && err.stack || err), sessions: [], byBackend: {} }) + '\n',
    () => process.exit(0));
});
