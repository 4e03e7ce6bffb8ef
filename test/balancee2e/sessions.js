#!/usr/bin/env node
// Socket.IO v4 client sessions with an optional X-Forwarded-For per session, for the balancer
// end-to-end tests (go test ./test/balancee2e/).
//
//   node sessions.js --url URL --n N [--mode polling|upgrade|websocket] [--concurrency C]
//                    [--xff-file FILE] [--rounds R] [--hold]
//
// Client i sends "X-Forwarded-For: <line i of FILE>" on every request (none without --xff-file).
// Each client runs R rounds: connect, ask `whoami`, and (but for the last round with --hold) close.
// At most C clients are between "start connecting" and "whoami answered" at once (C = N: all at
// once). With --hold the last round's sockets stay connected, reconnecting as Socket.IO does, until
// SIGINT/SIGTERM.
//
// stderr, JSON lines: {"event":"all_connected","count","n","byBackend","at"} once every client has
// finished its rounds (held sockets connected and placed), then {"event":"reconnect","total","at"}
// whenever a held socket has reconnected and learnt its new backend.
// stdout: one JSON summary {clients:[{id, xff, placements:[{backend, at}], disconnects:[{at, reason}],
// reconnects:[{at, backend}], connectErrors:[{at, status, retryAfter, message}], errors}], ms}.
'use strict';

const path = require('path');
const fs = require('fs');
const { io } = require(path.join(__dirname, '..', 'node', 'node_modules', 'socket.io-client'));

function parseArgs(argv) {
  const out = { url: '', n: 0, mode: 'upgrade', concurrency: 20, xffFile: '', rounds: 1, hold: false };
  for (let i = 2; i < argv.length; i++) {
    const k = argv[i];
    if (k === '--hold') { out.hold = true; continue; }
    const v = argv[++i];
    switch (k) {
      case '--url': out.url = v; break;
      case '--n': out.n = Number(v); break;
      case '--mode': out.mode = v; break;
      case '--concurrency': out.concurrency = Number(v); break;
      case '--xff-file': out.xffFile = v; break;
      case '--rounds': out.rounds = Number(v); break;
      default:
        process.stderr.write(`sessions.js: unknown argument ${k}\n`);
        process.exit(2);
    }
  }
  if (!out.url || !(out.n > 0) || !(out.rounds > 0) || !['polling', 'upgrade', 'websocket'].includes(out.mode)) {
    process.stderr.write('usage: node sessions.js --url URL --n N [--mode M] [--concurrency C] [--xff-file F] [--rounds R] [--hold]\n');
    process.exit(2);
  }
  return out;
}

const args = parseArgs(process.argv);
const progress = (obj) => process.stderr.write(JSON.stringify({ ...obj, at: Date.now() }) + '\n');
const xffs = args.xffFile ? fs.readFileSync(args.xffFile, 'utf8').split('\n').map((s) => s.trim()) : [];
const transports = { polling: ['polling'], websocket: ['websocket'], upgrade: ['polling', 'websocket'] }[args.mode];
const stop = { stopped: false };
let reconnectTotal = 0;
// Signal handlers go in first: a SIGINT right after all_connected must end the hold, not the process.
const stopRequested = new Promise((resolve) => {
  process.once('SIGINT', resolve);
  process.once('SIGTERM', resolve);
});

function whoami(socket, ms) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`whoami: no ack within ${ms} ms`)), ms);
    socket.emit('whoami', (who) => { clearTimeout(timer); resolve(who); });
  });
}

// round opens one socket of client c and resolves once it is connected and placed.
function round(c, last) {
  const opts = { transports, upgrade: args.mode === 'upgrade', forceNew: true, reconnection: true, timeout: 20000 };
  if (c.xff) opts.extraHeaders = { 'X-Forwarded-For': c.xff };
  const socket = io(args.url, opts);
  let placed = false;
  socket.on('connect_error', (err) => {
    if (stop.stopped) return;
    const xhr = err && err.context;
    const retryAfter = xhr && typeof xhr.getResponseHeader === 'function' ? xhr.getResponseHeader('retry-after') : null;
    c.connectErrors.push({ at: Date.now(), status: typeof err.description === 'number' ? err.description : 0, retryAfter, message: String(err && err.message) });
  });
  socket.on('disconnect', (reason) => {
    if (!stop.stopped && !socket.closing) c.disconnects.push({ at: Date.now(), reason });
  });
  return new Promise((resolve) => {
    socket.on('connect', () => {
      const at = Date.now();
      whoami(socket, 10000).then((who) => {
        if (!placed) {
          placed = true;
          c.placements.push({ backend: who.backend, at });
          if (last && args.hold) c.socket = socket;
          resolve(socket);
          return;
        }
        c.reconnects.push({ at, backend: who.backend });
        reconnectTotal++;
        progress({ event: 'reconnect', total: reconnectTotal });
      }).catch((err) => {
        c.errors.push(err.message);
        if (!placed) { placed = true; resolve(socket); }
      });
    });
  });
}

async function runClient(c) {
  for (let r = 0; r < args.rounds; r++) {
    const last = r === args.rounds - 1;
    const socket = await round(c, last);
    if (!(last && args.hold)) {
      socket.closing = true;
      socket.close();
    }
  }
}

async function main() {
  const started = Date.now();
  const clients = Array.from({ length: args.n }, (_, id) => ({
    id, xff: xffs[id] || '', placements: [], disconnects: [], reconnects: [], connectErrors: [], errors: [],
  }));
  let next = 0;
  const worker = async () => {
    while (next < clients.length) await runClient(clients[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(args.concurrency, args.n) }, worker));
  const byBackend = {};
  for (const c of clients) {
    const p = c.placements[c.placements.length - 1];
    if (p) byBackend[p.backend] = (byBackend[p.backend] || 0) + 1;
  }
  progress({ event: 'all_connected', count: clients.filter((c) => c.placements.length === args.rounds).length, n: args.n, byBackend });
  if (args.hold) await stopRequested;
  stop.stopped = true;
  for (const c of clients) {
    if (c.socket) { c.socket.closing = true; c.socket.close(); delete c.socket; }
  }
  process.stdout.write(JSON.stringify({ clients, ms: Date.now() - started }) + '\n');
  setTimeout(() => process.exit(0), 2000).unref();
}

main().catch((err) => {
  process.stdout.write(JSON.stringify({ fatal: String(err && err.stack || err), clients: [] }) + '\n', () => process.exit(0));
});
