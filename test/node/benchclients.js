#!/usr/bin/env node
// Benchmark workloads driven by the real socket.io-client (what users run), for test/bench.
//
//   node benchclients.js --url URL --mode tail --n 300 [--concurrency 10] [--threshold-ms 50]
//   node benchclients.js --url URL --mode polling|websocket --n 150 --emits 20 [--concurrency 150]
//
// tail: each session is `io(url)` (polling, then the upgrade to WebSocket, socket.io-client's
// defaults) and, on connect, one acked `echo` emit; the time from emit to ack is the session's first
// ack. Sessions run `concurrency` at a time. It reports how many first acks took longer than
// threshold-ms, their times, and per session the client-side order of the events that decide the
// Engine.IO upgrade race: the CONNECT ack (connect) against the `ok` of the CONNECT POST (the
// transport's first drain) and the WebSocket probe's pong (upgrading).
//
// polling / websocket: n sessions at once (that transport only), each sends `emits` acked `echo`
// events one after the other, then closes.
//
// stdout: one JSON summary. Exit code 0 even when sessions fail: the caller asserts.
'use strict';

const { io } = require('socket.io-client');

function parseArgs(argv) {
  const out = { url: '', mode: 'tail', n: 300, emits: 20, concurrency: 0, thresholdMs: 50, timeoutMs: 20000 };
  for (let i = 2; i < argv.length; i += 2) {
    const k = argv[i];
    const v = argv[i + 1];
    switch (k) {
      case '--url': out.url = v; break;
      case '--mode': out.mode = v; break;
      case '--n': out.n = Number(v); break;
      case '--emits': out.emits = Number(v); break;
      case '--concurrency': out.concurrency = Number(v); break;
      case '--threshold-ms': out.thresholdMs = Number(v); break;
      case '--timeout-ms': out.timeoutMs = Number(v); break;
      default:
        process.stderr.write(`benchclients.js: unknown argument ${k}\n`);
        process.exit(2);
    }
  }
  if (!out.url || !['tail', 'polling', 'websocket'].includes(out.mode) || !(out.n > 0)) {
    process.stderr.write('usage: node benchclients.js --url URL --mode tail|polling|websocket --n N\n');
    process.exit(2);
  }
  if (!out.concurrency) out.concurrency = out.mode === 'tail' ? 10 : out.n;
  return out;
}

const args = parseArgs(process.argv);
const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

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

function quantile(sorted, q) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

const round3 = (x) => (x === null || x === undefined ? null : Math.round(x * 1000) / 1000);

// tailSession opens one upgrade-mode session, emits once on connect and records the timeline (ms
// since io()).
function tailSession(id) {
  return new Promise((resolve) => {
    const t0 = nowMs();
    const at = (t) => round3(t - t0);
    const r = { id, ok: false, ackMs: null, connect: null, firstDrain: null, upgrading: null, upgrade: null, error: '' };
    const socket = io(args.url, { forceNew: true, reconnection: false, timeout: args.timeoutMs });
    const engine = socket.io.engine;
    if (engine && engine.transport) {
      engine.transport.once('drain', () => { r.firstDrain = at(nowMs()); });
    }
    if (engine) {
      engine.once('upgrading', () => { r.upgrading = at(nowMs()); });
      engine.once('upgrade', () => { r.upgrade = at(nowMs()); });
    }
    let finished = false;
    const finish = (err) => {
      if (finished) return;
      finished = true;
      clearTimeout(deadline);
      if (err) r.error = err;
      r.ok = !err && r.ackMs !== null;
      socket.close();
      resolve(r);
    };
    const deadline = setTimeout(() => finish(`no ack within ${args.timeoutMs} ms`), args.timeoutMs);
    socket.on('connect_error', (err) => finish(`connect_error: ${err && err.message}`));
    socket.once('connect', () => {
      const c = nowMs();
      r.connect = at(c);
      socket.emit('echo', id, () => {
        r.ackMs = round3(nowMs() - c);
        // Keep the session until the upgrade settles, as a real client would (the close is not
        // part of the measurement).
        finish('');
      });
    });
  });
}

async function tailMode() {
  const started = nowMs();
  const sessions = await pool(args.n, args.concurrency, tailSession);
  const acks = sessions.filter((s) => s.ok).map((s) => s.ackMs).sort((a, b) => a - b);
  const slow = sessions.filter((s) => s.ok && s.ackMs > args.thresholdMs);
  // The race that stalls the first emit: the CONNECT ack came before the POST's ok (the emit waits
  // for the drain), and the probe's pong came before that drain (the emit then waits for the
  // upgrade, which waits for the pending GET: the server's noop, checked every 100 ms).
  const raced = (s) => s.connect !== null && s.firstDrain !== null && s.connect < s.firstDrain;
  const connectBeforeDrain = sessions.filter(raced).length;
  const gaps = sessions.filter((s) => s.connect !== null && s.firstDrain !== null).map((s) => s.connect - s.firstDrain).sort((a, b) => a - b);
  return {
    mode: 'tail',
    n: args.n,
    concurrency: args.concurrency,
    thresholdMs: args.thresholdMs,
    ok: acks.length,
    failed: sessions.length - acks.length,
    slow: slow.length,
    slowRaced: slow.filter(raced).length,
    slowAckMs: slow.map((s) => s.ackMs).sort((a, b) => a - b),
    ackMs: { p50: quantile(acks, 0.5), p99: quantile(acks, 0.99), max: acks.length ? acks[acks.length - 1] : null },
    connectBeforeDrain,
    connectMinusDrainMs: { p50: round3(quantile(gaps, 0.5)), p10: round3(quantile(gaps, 0.1)) },
    slowSessions: slow.slice(0, 50),
    errors: [...new Set(sessions.filter((s) => !s.ok).map((s) => s.error))].slice(0, 10),
    ms: Math.round(nowMs() - started),
  };
}

// loadSession opens one session on one transport and runs `emits` acked echoes in turn.
function loadSession(id, transport) {
  return new Promise((resolve) => {
    const socket = io(args.url, { forceNew: true, reconnection: false, transports: [transport], upgrade: false, timeout: args.timeoutMs });
    let done = false;
    const finish = (err) => {
      if (done) return;
      done = true;
      clearTimeout(deadline);
      socket.close();
      resolve(err || '');
    };
    const deadline = setTimeout(() => finish(`session timeout after ${args.timeoutMs} ms`), args.timeoutMs);
    socket.on('connect_error', (err) => finish(`connect_error: ${err && err.message}`));
    socket.on('disconnect', (reason) => finish(`disconnect: ${reason}`));
    socket.once('connect', () => {
      let i = 0;
      const next = () => {
        if (i === args.emits) return finish('');
        const sent = i++;
        socket.emit('echo', sent, (ack) => {
          if (!ack || ack.data !== sent) return finish(`echo ${sent}: wrong ack`);
          next();
        });
      };
      next();
    });
  });
}

async function loadMode() {
  const started = nowMs();
  const errs = await pool(args.n, args.concurrency, (i) => loadSession(i, args.mode));
  const failed = errs.filter((e) => e !== '');
  return {
    mode: args.mode,
    n: args.n,
    emits: args.emits,
    ok: args.n - failed.length,
    failed: failed.length,
    errors: [...new Set(failed)].slice(0, 10),
    ms: Math.round(nowMs() - started),
  };
}

(args.mode === 'tail' ? tailMode() : loadMode()).then((summary) => {
  process.stdout.write(JSON.stringify(summary) + '\n', () => process.exit(0));
}).catch((err) => {
  process.stdout.write(JSON.stringify({ fatal: String(err && err.stack || err) }) + '\n', () => process.exit(0));
});
