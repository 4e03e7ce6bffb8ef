#!/usr/bin/env node
// Real socket.io-client sessions for the mirroring end-to-end tests.
//
//   node clients.js --url URL --mode polling|upgrade|websocket --n N --emits E --version 4|2 --tag T
//                   [--concurrency C]
//
// Client c ("T-k") connects, then sends E acked emits in order: index 7 is a binary event
// ("bin", {c,i}, Buffer), index 13 is "diff" (a primary answers {answer:"v1"}), the others "echo"
// ({c,i} must come back). It then waits for the upgrade (mode upgrade) and disconnects.
// stdout: one JSON summary {ok, failed, errors (first 10), latencies (ms per ack), shadowAnswers, welcome}.
'use strict';
const path = require('path');
const nm = path.join(__dirname, '..', 'node', 'node_modules');

const args = { url: '', mode: 'polling', n: 10, emits: 20, version: '4', tag: 'c', concurrency: 50 };
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i].replace(/^--/, '');
  if (!(k in args)) { process.stderr.write(`clients.js: unknown argument ${k}\n`); process.exit(2); }
  args[k] = typeof args[k] === 'number' ? Number(process.argv[i + 1]) : process.argv[i + 1];
}

const transports = { polling: ['polling'], websocket: ['websocket'], upgrade: ['polling', 'websocket'] }[args.mode];
function connect() {
  const opts = { transports, forceNew: true, reconnection: false, timeout: 20000, upgrade: args.mode === 'upgrade', rememberUpgrade: false };
  if (args.version === '4') return require(path.join(nm, 'socket.io-client')).io(args.url, opts);
  return require(path.join(nm, 'socket.io-client-v2'))(args.url, opts);
}

const summary = { ok: 0, failed: 0, errors: [], latencies: [], shadowAnswers: 0, welcome: 0 };

function emitAck(socket, ...payload) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const timer = setTimeout(() => reject(new Error(`${payload[0]}: no ack within 10 s`)), 10000);
    socket.emit(...payload, (...ack) => {
      clearTimeout(timer);
      summary.latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
      resolve(ack);
    });
  });
}

async function session(k) {
  const c = `${args.tag}-${k}`;
  const socket = connect();
  const errors = [];
  let closing = false;
  socket.on('disconnect', (r) => { if (!closing) errors.push(`disconnect: ${r}`); });
  socket.on('connect_error', (e) => errors.push(`connect_error: ${e && e.message}`));
  socket.on('welcome', () => summary.welcome++);
  try {
    await new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('connect timeout')), 20000);
      socket.once('connect', () => { clearTimeout(t); resolve(); });
    });
    for (let i = 0; i < args.emits; i++) {
      const data = { c, i };
      if (i === 7) {
        const buf = Buffer.alloc(64 + k % 7, i + k);
        const [ack] = await emitAck(socket, 'bin', data, buf);
        if (!Buffer.isBuffer(ack) || !ack.equals(buf)) throw new Error(`bin ${i}: wrong ack`);
      } else if (i === 13) {
        const [ack] = await emitAck(socket, 'diff', data);
        if (ack && ack.answer === 'v2') summary.shadowAnswers++;
        if (!ack || ack.answer !== 'v1') throw new Error(`diff ${i}: wrong ack ${JSON.stringify(ack)}`);
      } else {
        const [ack] = await emitAck(socket, 'echo', data);
        if (JSON.stringify(ack) !== JSON.stringify(data)) throw new Error(`echo ${i}: wrong ack ${JSON.stringify(ack)}`);
      }
    }
    if (args.mode === 'upgrade') {
      const engine = socket.io.engine;
      if (engine.transport.name !== 'websocket') {
        await new Promise((resolve, reject) => {
          const t = setTimeout(() => reject(new Error('no upgrade within 5 s')), 5000);
          engine.once('upgrade', () => { clearTimeout(t); resolve(); });
        });
      }
    }
  } catch (e) {
    errors.push(e.message);
  }
  closing = true;
  socket.disconnect();
  if (errors.length) {
    summary.failed++;
    if (summary.errors.length < 10) summary.errors.push(`${c}: ${errors.join('; ')}`);
  } else {
    summary.ok++;
  }
}

(async () => {
  let next = 0;
  const worker = async () => { while (next < args.n) await session(next++); };
  await Promise.all(Array.from({ length: Math.min(args.concurrency, args.n) }, worker));
  process.stdout.write(JSON.stringify(summary) + '\n');
  setTimeout(() => process.exit(0), 200);
})();
