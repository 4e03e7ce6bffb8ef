#!/usr/bin/env node
// A real Socket.IO server for the sioproxy end-to-end tests.
//
//   node backend.js --port P|0 --name NAME --version 4|2 [--host 127.0.0.1] [--ping-interval MS] [--ping-timeout MS]
//                   [--log-headers] [--tls-cert FILE --tls-key FILE] [--allow-eio3]
//
// --log-headers adds the handshake request's raw header lines ("headers": [name, value, ...]) to each
// connection event. With --tls-cert and --tls-key the server speaks HTTPS (and WSS) instead of HTTP.
// --allow-eio3 (version 4 only): the server also accepts Engine.IO 3 clients (socket.io-client@2), as
// socket.io@4's allowEIO3 option does during a migration from 2.x.
//
// It prints one JSON object per line on stdout:
//   {"event":"ready","port":P,"name":NAME,"version":V}
//   {"event":"connection","sid":SID,"transport":"polling"|"websocket"}
//   {"event":"upgrade","sid":SID,"transport":"websocket"}
//   {"event":"disconnect","sid":SID,"reason":REASON,"requests":N}
//   {"event":"connection_error","code":C,"message":M,"sid":SID|null,"url":URL}
// "requests" counts the HTTP requests and WebSocket upgrades that carried the session's sid.
// A connection_error with code 1 ("Session ID unknown") means a request of some session reached this
// backend although the session lives elsewhere: the Go tests assert there are none.
//
// "order" in /__stats counts, per session, whether its first polling request after the handshake was
// a GET (getFirst) or a POST (postFirst): a socket.io-client sends its CONNECT POST before that GET,
// and a GET that overtakes it makes the client's first emit wait for the upgrade (test/bench).
// Socket.IO handlers: echo (ack {backend, data}), bin (ack (Buffer, backend)), whoami (ack {backend,
// transport, sid}). Plain HTTP: GET /__name answers the backend name, GET /__stats a JSON summary,
// /__headers the request as received ({method, url, httpVersion, rawHeaders, rawTrailers, bodyBytes}), GET /__sse?ms=M
// a server-sent-events stream of one event a second for M ms, GET /__download?bytes=N N bytes with a
// Content-Length, GET /__trailers a chunked body with an X-Checksum trailer, POST /__close-all closes
// every live Engine.IO session (between test cases) and answers how many it closed.
'use strict';

const http = require('http');
const https = require('https');
const fs = require('fs');

function parseArgs(argv) {
  const out = { port: -1, name: 'backend', version: '4', host: '127.0.0.1', pingInterval: 0, pingTimeout: 0,
    logHeaders: false, tlsCert: '', tlsKey: '', allowEIO3: false };
  for (let i = 2; i < argv.length; i++) {
    const k = argv[i];
    const v = argv[i + 1];
    switch (k) {
      case '--port': out.port = Number(v); i++; break;
      case '--name': out.name = v; i++; break;
      case '--version': out.version = String(v); i++; break;
      case '--host': out.host = v; i++; break;
      case '--ping-interval': out.pingInterval = Number(v); i++; break;
      case '--ping-timeout': out.pingTimeout = Number(v); i++; break;
      case '--log-headers': out.logHeaders = true; break;
      case '--tls-cert': out.tlsCert = v; i++; break;
      case '--tls-key': out.tlsKey = v; i++; break;
      case '--allow-eio3': out.allowEIO3 = true; break;
      default:
        process.stderr.write(`backend.js: unknown argument ${k}\n`);
        process.exit(2);
    }
  }
  if (!(out.port >= 0) || !['2', '4'].includes(out.version) || (out.allowEIO3 && out.version !== '4')) {
    process.stderr.write('usage: node backend.js --port P --name NAME --version 4|2\n');
    process.exit(2);
  }
  return out;
}

const args = parseArgs(process.argv);
const log = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

const stats = { connections: 0, disconnects: 0, upgrades: 0, connectionErrors: 0, unknownSid: 0, requests: 0 };
const requestsBySid = new Map(); // sid -> request count (only for live sessions)
const order = { getFirst: 0, postFirst: 0 };
const orderPending = new Set(); // sids whose first polling request after the handshake is still to come

// A 64 KiB block of the download body: byte i of the body is i % 251.
const block = Buffer.alloc(251 * 261);
for (let i = 0; i < block.length; i++) block[i] = i % 251;

// download writes n bytes (byte i = i % 251) with backpressure.
function download(res, n) {
  res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(n) });
  let left = n;
  const pump = () => {
    while (left > 0) {
      const chunk = left >= block.length ? block : block.subarray(0, left);
      left -= chunk.length;
      if (!res.write(chunk)) { res.once('drain', pump); return; }
    }
    res.end();
  };
  pump();
}

function handler(req, res) {
  // Reached only for paths that are not the Engine.IO path (Socket.IO wraps this listener).
  const url = new URL(req.url, 'http://x');
  if (url.pathname === '/__headers') {
    let bodyBytes = 0;
    req.on('data', (c) => { bodyBytes += c.length; });
    req.on('end', () => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ method: req.method, url: req.url, httpVersion: req.httpVersion, rawHeaders: req.rawHeaders, rawTrailers: req.rawTrailers, bodyBytes }));
    });
    return;
  }
  if (url.pathname === '/__sse') {
    const ms = Number(url.searchParams.get('ms') || 5000);
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store' });
    let n = 0;
    const started = Date.now();
    const tick = () => {
      res.write(`id: ${n}\ndata: ${n}\n\n`);
      n++;
      if (Date.now() - started >= ms) { res.end('event: end\ndata: done\n\n'); return; }
      timer = setTimeout(tick, 1000);
    };
    let timer = setTimeout(tick, 0);
    req.on('close', () => clearTimeout(timer));
    return;
  }
  if (url.pathname === '/__download') {
    download(res, Number(url.searchParams.get('bytes') || 0));
    return;
  }
  if (url.pathname === '/__trailers') {
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Trailer': 'X-Checksum' });
    res.write('part one, ');
    res.write('part two');
    res.addTrailers({ 'X-Checksum': 'c0ffee' });
    res.end();
    return;
  }
  if (url.pathname === '/__close-all' && req.method === 'POST') {
    const clients = Object.values(io.engine.clients);
    for (const c of clients) c.close();
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ closed: clients.length }));
    return;
  }
  if (url.pathname === '/__name') {
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.end(args.name);
    return;
  }
  if (url.pathname === '/__stats') {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ name: args.name, version: args.version, live: requestsBySid.size, ...stats, order }));
    return;
  }
  res.writeHead(404, { 'Content-Type': 'text/plain' });
  res.end('not found');
}

const server = args.tlsCert
  ? https.createServer({ cert: fs.readFileSync(args.tlsCert), key: fs.readFileSync(args.tlsKey) }, handler)
  : http.createServer(handler);

const opts = {};
if (args.pingInterval) opts.pingInterval = args.pingInterval;
if (args.pingTimeout) opts.pingTimeout = args.pingTimeout;

let io;
if (args.version === '4') {
  const { Server } = require('socket.io');
  io = new Server(server, {
    ...opts,
    allowEIO3: args.allowEIO3,
    cors: { origin: true, credentials: true },
  });
  io.engine.on('connection_error', (err) => {
    recordConnectionError(err.code, err.message, err.req && err.req.url);
  });
} else {
  const socketio = require('socket.io-v2');
  io = socketio(server, { ...opts, origins: '*:*' });
  // engine.io 3.x has no connection_error event: observe the verdicts of verify() instead.
  const engine = io.engine;
  const verify = engine.verify.bind(engine);
  engine.verify = (req, upgrade, fn) => verify(req, upgrade, (err, ok) => {
    if (!ok && err !== null && err !== undefined && typeof err === 'number') {
      const message = (engine.constructor.errorMessages || {})[err] || String(err);
      recordConnectionError(err, message, req.url);
    }
    fn(err, ok);
  });
}

function sidOf(url) {
  const i = url.indexOf('?');
  if (i < 0) return null;
  return new URLSearchParams(url.slice(i + 1)).get('sid');
}

function recordConnectionError(code, message, url) {
  stats.connectionErrors++;
  if (code === 1) stats.unknownSid++;
  log({ event: 'connection_error', code, message, sid: url ? sidOf(url) : null, url: url || null });
}

// Count every request that carries a sid (polling GET/POST and WebSocket upgrades). Prepended so it runs
// before Engine.IO sees the request.
function countRequest(req) {
  if (!req.url.startsWith('/socket.io/')) return;
  stats.requests++;
  const sid = sidOf(req.url);
  if (sid && requestsBySid.has(sid)) requestsBySid.set(sid, requestsBySid.get(sid) + 1);
  if (sid && orderPending.has(sid) && !req.headers.upgrade) {
    orderPending.delete(sid);
    if (req.method === 'GET') order.getFirst++;
    else if (req.method === 'POST') order.postFirst++;
  }
}
server.prependListener('request', countRequest);
server.prependListener('upgrade', countRequest);

io.engine.on('connection', (conn) => {
  stats.connections++;
  // The handshake request itself carried no sid: count it here.
  requestsBySid.set(conn.id, 1);
  if (conn.transport.name === 'polling') orderPending.add(conn.id);
  const ev = { event: 'connection', sid: conn.id, transport: conn.transport.name };
  if (args.logHeaders && conn.request) ev.headers = conn.request.rawHeaders;
  log(ev);
  conn.on('upgrade', () => {
    stats.upgrades++;
    log({ event: 'upgrade', sid: conn.id, transport: conn.transport.name });
  });
  conn.on('close', (reason) => {
    stats.disconnects++;
    const requests = requestsBySid.get(conn.id) || 0;
    requestsBySid.delete(conn.id);
    orderPending.delete(conn.id);
    log({ event: 'disconnect', sid: conn.id, reason: String(reason), requests });
  });
});

function toBuffer(x) {
  if (Buffer.isBuffer(x)) return x;
  if (x instanceof ArrayBuffer) return Buffer.from(new Uint8Array(x));
  if (ArrayBuffer.isView(x)) return Buffer.from(x.buffer, x.byteOffset, x.byteLength);
  return null;
}

io.on('connection', (socket) => {
  socket.on('echo', (data, ack) => {
    if (typeof ack === 'function') ack({ backend: args.name, data });
  });
  socket.on('bin', (data, ack) => {
    if (typeof ack !== 'function') return;
    const buf = toBuffer(data);
    ack(buf === null ? Buffer.alloc(0) : Buffer.from(buf), args.name);
  });
  socket.on('whoami', (ack) => {
    if (typeof ack === 'function') {
      ack({ backend: args.name, transport: socket.conn.transport.name, sid: socket.conn.id });
    }
  });
});

server.on('error', (err) => {
  process.stderr.write(`backend.js ${args.name}: ${err.stack || err}\n`);
  process.exit(1);
});

server.listen(args.port, args.host, () => {
  // --port 0: the kernel picks a free port, reported here (no race with other processes).
  log({ event: 'ready', port: server.address().port, name: args.name, version: args.version });
});

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => process.exit(0));
}
