#!/usr/bin/env node
// Held socket.io-client sessions for the chaos soak (test/chaos): a lean driver that accounts for
// every acked emit.
//
//   node soak.js --url URL --version 4|2 --mode polling|upgrade|websocket --n N [--emit-ms 2000]
//                [--ack-timeout-ms 10000] [--concurrency 25] [--label NAME] [--wait-stdin 1]
//
// With --wait-stdin 1 the sessions connect once a line arrives on stdin (start-up overlaps the
// caller's own preparations).
//
// Each session connects (socket.io-client v4, or v2 for --version 2) and emits `echo` {id, seq}
// every emit-ms, one at a time, right away after each (re)connect; Socket.IO reconnects it as it
// does by default. Every emit ends in one of:
//   acked            the ack came (with its own id and seq, else it is a bad ack);
//   lost with session  no ack, and the session disconnected after the emit was sent;
//   lost connected   no ack within ack-timeout-ms although the session stayed connected from the
//                    emit on (what must never happen); an ack that comes later counts as late too.
//
// stderr: a JSON status line every 250 ms:
//   {"event":"status","at":MS,"n":N,"everConnected":K,"connected":C,"minLastAckAt":MS,"emits":E,
//    "acks":A,"lostConnected":L}
// (minLastAckAt is 0 until every session has been acked once). On SIGINT or SIGTERM the sessions
// stop emitting, the driver waits for the acks still due (at most ack-timeout-ms), prints one JSON
// summary on stdout (totals, ack latency histogram, connect errors by message, and per session its
// disconnects and reconnects with times and backends), closes the sessions and exits.
'use strict';

function parseArgs(argv) {
  const out = { url: '', version: '4', mode: 'upgrade', n: 100, emitMs: 2000, ackTimeoutMs: 10000, concurrency: 25, label: '', waitStdin: false };
  for (let i = 2; i < argv.length; i += 2) {
    const k = argv[i];
    const v = argv[i + 1];
    switch (k) {
      case '--url': out.url = v; break;
      case '--version': out.version = String(v); break;
      case '--mode': out.mode = v; break;
      case '--n': out.n = Number(v); break;
      case '--emit-ms': out.emitMs = Number(v); break;
      case '--ack-timeout-ms': out.ackTimeoutMs = Number(v); break;
      case '--concurrency': out.concurrency = Number(v); break;
      case '--label': out.label = v; break;
      case '--wait-stdin': out.waitStdin = v === '1'; break;
      default:
        process.stderr.write(`soak.js: unknown argument ${k}\n`);
        process.exit(2);
    }
  }
  if (!out.url || !['polling', 'upgrade', 'websocket'].includes(out.mode) || !['2', '4'].includes(out.version) ||
      !(out.n > 0) || !(out.emitMs > 0) || !(out.ackTimeoutMs > 0) || !(out.concurrency > 0)) {
    process.stderr.write('usage: node soak.js --url URL --version 4|2 --mode polling|upgrade|websocket --n N\n');
    process.exit(2);
  }
  if (!out.label) out.label = `v${out.version}-${out.mode}`;
  return out;
}

const args = parseArgs(process.argv);
const ioV4 = args.version === '4' ? require('socket.io-client').io : null;
const ioV2 = args.version === '2' ? require('socket.io-client-v2') : null;

function connect() {
  const opts = {
    transports: args.mode === 'polling' ? ['polling'] : args.mode === 'websocket' ? ['websocket'] : ['polling', 'websocket'],
    upgrade: args.mode === 'upgrade',
    rememberUpgrade: false,
    forceNew: true,
    reconnection: true,
    timeout: 20000,
  };
  return args.version === '4' ? ioV4(args.url, opts) : ioV2(args.url, opts);
}

// Ack latency histogram: bucket b holds latencies in [2^(b/4), 2^((b+1)/4)) ms, b = 0 for < 1 ms.
const hist = {};
function observe(ms) {
  const b = ms < 1 ? 0 : Math.floor(Math.log2(ms) * 4) + 1;
  hist[b] = (hist[b] || 0) + 1;
}

const totals = { emits: 0, acks: 0, lostConnected: 0, lostWithSession: 0, lateAcks: 0, badAcks: 0, maxAckMs: 0 };
const connectErrors = {};
const stop = { stopping: false };
const transportOf = (socket) => (socket.io.engine && socket.io.engine.transport ? socket.io.engine.transport.name : '');

function session(id) {
  const s = {
    id, connectedAt: 0, firstBackend: '', lastBackend: '', transport: '', lastAckAt: 0, acks: 0, emits: 0,
    disconnects: [], reconnects: [], lostConnected: [],
  };
  const socket = connect();
  let epoch = 0; // bumped at every disconnect
  let seq = 0;
  let pending = null; // the emit awaiting its ack in this epoch
  const due = new Set(); // emits whose ack may still come (for the wait at stop)

  function emit() {
    if (stop.stopping || !socket.connected || pending) return;
    const rec = { seq: ++seq, sentAt: Date.now(), epoch, done: false, overdue: false, timer: null };
    pending = rec;
    due.add(rec);
    s.emits++;
    totals.emits++;
    rec.timer = setTimeout(() => {
      if (rec.done) return;
      if (rec.epoch === epoch && socket.connected) {
        rec.overdue = true; // lost while connected, unless the ack still comes
        totals.lostConnected++;
        s.lostConnected.push({ sentAt: rec.sentAt, transport: transportOf(socket), backend: s.lastBackend });
      } else {
        totals.lostWithSession++;
      }
      rec.done = true;
      due.delete(rec);
      if (pending === rec) pending = null;
      emit();
    }, args.ackTimeoutMs);
    socket.emit('echo', { id, seq: rec.seq }, (ack) => {
      const now = Date.now();
      const ms = now - rec.sentAt;
      if (!ack || !ack.data || ack.data.id !== id || ack.data.seq !== rec.seq) {
        totals.badAcks++;
      } else if (rec.done) {
        totals.lateAcks++; // counted lost when its time ran out; stays counted
      } else {
        clearTimeout(rec.timer);
        rec.done = true;
        due.delete(rec);
        totals.acks++;
        s.acks++;
        observe(ms);
        totals.maxAckMs = Math.max(totals.maxAckMs, ms);
        s.lastAckAt = now;
        if (!s.firstBackend) s.firstBackend = ack.backend;
        s.lastBackend = ack.backend;
        s.transport = transportOf(socket);
        const r = s.reconnects[s.reconnects.length - 1];
        if (r && !r.ackAt) {
          r.ackAt = now;
          r.backend = ack.backend;
        }
      }
      if (pending === rec) pending = null;
    });
  }

  const connected = new Promise((resolve) => {
    socket.on('connect', () => {
      const now = Date.now();
      s.transport = transportOf(socket);
      if (!s.connectedAt) {
        s.connectedAt = now;
        resolve();
      } else {
        s.reconnects.push({ at: now, backend: '', ackAt: 0 });
      }
      emit();
    });
  });
  socket.on('disconnect', (reason) => {
    epoch++;
    pending = null; // its ack can no longer come over this session; its timer classifies it
    // backend: as of the session's last ack; transport: the one that closed (an upgrade may have
    // happened since the last ack)
    const transport = transportOf(socket) || s.transport;
    if (!stop.stopping) s.disconnects.push({ at: Date.now(), reason: String(reason), backend: s.lastBackend, transport });
  });
  socket.on('connect_error', (err) => {
    if (stop.stopping) return;
    const msg = String((err && err.message) || err);
    connectErrors[msg] = (connectErrors[msg] || 0) + 1;
  });
  const tick = setInterval(emit, args.emitMs);
  s.connected = connected;
  s.socket = socket;
  s.idle = () => due.size === 0;
  s.close = () => {
    clearInterval(tick);
    s.state = socket.connected ? 'connected' : 'disconnected';
    socket.close();
  };
  return s;
}

const sessions = [];
const started = Date.now();

function status() {
  let everConnected = 0;
  let connected = 0;
  let minLastAckAt = Infinity;
  for (const s of sessions) {
    if (s.connectedAt) everConnected++;
    if (s.socket.connected) connected++;
    minLastAckAt = Math.min(minLastAckAt, s.lastAckAt);
  }
  if (sessions.length < args.n || minLastAckAt === Infinity) minLastAckAt = 0;
  return { event: 'status', label: args.label, at: Date.now(), n: args.n, everConnected, connected, minLastAckAt,
    emits: totals.emits, acks: totals.acks, lostConnected: totals.lostConnected };
}
const statusTimer = setInterval(() => process.stderr.write(JSON.stringify(status()) + '\n'), 250);

async function main() {
  if (args.waitStdin) {
    await new Promise((resolve) => {
      process.stdin.once('data', resolve);
      process.stdin.once('end', resolve);
    });
    process.stdin.pause();
  }
  // Connect in waves of `concurrency` so that the handshakes don't all land at once.
  for (let i = 0; i < args.n && !stop.stopping; i += args.concurrency) {
    const wave = [];
    for (let j = i; j < Math.min(args.n, i + args.concurrency); j++) {
      const s = session(j);
      sessions.push(s);
      wave.push(s.connected);
    }
    await Promise.race([Promise.all(wave), new Promise((r) => setTimeout(r, 20000))]);
  }
}

async function finish() {
  if (stop.stopping) return;
  stop.stopping = true;
  // The acks still due: wait for them (each has its timer, at most ack-timeout-ms).
  const deadline = Date.now() + args.ackTimeoutMs + 1000;
  while (Date.now() < deadline && !sessions.every((s) => s.idle())) {
    await new Promise((r) => setTimeout(r, 50));
  }
  clearInterval(statusTimer);
  const last = status();
  for (const s of sessions) s.close();
  const out = {
    label: args.label, version: args.version, mode: args.mode, n: args.n, ms: Date.now() - started,
    connectedAtEnd: last.connected, ...totals, pendingAtEnd: sessions.filter((s) => !s.idle()).length,
    ackHist: hist, connectErrors, cpuMs: Math.round((process.cpuUsage().user + process.cpuUsage().system) / 1000),
    rssBytes: process.memoryUsage().rss,
    sessions: sessions.map((s) => ({
      id: s.id, connectedAt: s.connectedAt, state: s.state, firstBackend: s.firstBackend, lastBackend: s.lastBackend,
      lastAckAt: s.lastAckAt, acks: s.acks, emits: s.emits, disconnects: s.disconnects, reconnects: s.reconnects,
      lostConnected: s.lostConnected,
    })),
  };
  process.stdout.write(JSON.stringify(out) + '\n', () => {
    // Let the close packets go out, so that the servers see clean closes; then leave.
    setTimeout(() => process.exit(0), 500);
  });
}

for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { finish(); });
main().catch((err) => {
  process.stderr.write(`soak.js: ${err && err.stack || err}\n`);
  process.exit(1);
});
