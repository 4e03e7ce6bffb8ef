#!/usr/bin/env node
// A Socket.IO server for the mirroring end-to-end tests (primary or shadow role).
//
//   node server.js --port P --name NAME --role primary|shadow --version 4|2
//
// Handlers (every payload carries {c: clientId, i: index}):
//   echo (data, ack)        ack(data)
//   bin  (data, buf, ack)   ack(buf)                      binary event, one attachment; binary ack
//   diff (data, ack)        ack({answer: "v1"}) on a primary, ack({answer: "v2"}) on a shadow
// On connection the server emits "welcome" {hello: true}. Every event received is recorded per client
// ("name:i" in arrival order); GET /__events answers {clientId: [...]} and GET /__stats {connections}.
// stdout: {"event":"ready",...} once listening.
'use strict';
const path = require('path');
const http = require('http');
const nm = path.join(__dirname, '..', 'node', 'node_modules');

const args = { port: 0, name: 'server', role: 'primary', version: '4', deflate: '0' };
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i].replace(/^--/, '');
  if (!(k in args)) { process.stderr.write(`server.js: unknown argument ${k}\n`); process.exit(2); }
  args[k] = k === 'port' ? Number(process.argv[i + 1]) : process.argv[i + 1];
}

const events = new Map(); // clientId -> ["name:i", ...]
let connections = 0;
const record = (name, data) => {
  // Shadows record (the tests read them); primaries keep no state, so that their latency stays flat.
  if (args.role !== 'shadow' || !data || data.c === undefined) return;
  if (!events.has(data.c)) events.set(data.c, []);
  events.get(data.c).push(`${name}:${data.i}`);
};

const server = http.createServer((req, res) => {
  if (req.url.startsWith('/__events')) {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(Object.fromEntries(events)));
    return;
  }
  if (req.url.startsWith('/__stats')) {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ name: args.name, connections }));
    return;
  }
  if (req.url.startsWith('/plain')) {
    record('http', { c: 'http', i: req.method + ' ' + req.url });
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.end(args.name);
    return;
  }
  res.writeHead(404);
  res.end();
});

let io;
if (args.version === '4') {
  const { Server } = require(path.join(nm, 'socket.io'));
  // --deflate 1: permessage-deflate on every WebSocket message (threshold 0), as python-engineio and
  // servers configured for it negotiate; the mirror must inflate what it reads.
  const deflate = args.deflate === '1' ? { perMessageDeflate: { threshold: 0 } } : {};
  io = new Server(server, { cors: { origin: true, credentials: true }, ...deflate });
} else {
  io = require(path.join(nm, 'socket.io-v2'))(server, { origins: '*:*' });
}

io.on('connection', (socket) => {
  connections++;
  socket.emit('welcome', { hello: true });
  socket.on('echo', (data, ack) => { record('echo', data); if (typeof ack === 'function') ack(data); });
  socket.on('bin', (data, buf, ack) => { record('bin', data); if (typeof ack === 'function') ack(buf); });
  socket.on('diff', (data, ack) => {
    record('diff', data);
    if (typeof ack === 'function') ack({ answer: args.role === 'shadow' ? 'v2' : 'v1' });
  });
});

server.listen(args.port, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ event: 'ready', name: args.name, port: args.port }) + '\n');
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
