#!/usr/bin/env node
// Plain Engine.IO (no Socket.IO) for the sioproxy end-to-end tests: servers and clients on
// engine.io's own path, /engine.io/, which a proxy must be told of (-path /engine.io/).
//
//   node engineio.js server --port 0 --name NAME
//       an engine.io server (the one socket.io@4 uses) that answers each message M with NAME:M and
//       prints {"event":"ready","port":P,"name":NAME}, then {"event":"connection","sid":SID} lines
//   node engineio.js clients --url URL --mode polling|upgrade|websocket --n N --msgs K
//       N engine.io-client sessions at once, each sending K messages one after another and waiting
//       for each echo; prints one JSON summary: {"ok":N_OK,"failed":N_FAILED,"sessions":[{"ok",
//       "backends":[...],"transport","errors":[...]}]}
'use strict';

const http = require('http');

function args(argv) {
  const out = { port: 0, name: 'eio', url: '', mode: 'polling', n: 10, msgs: 5 };
  for (let i = 3; i < argv.length; i += 2) {
    const k = argv[i].replace(/^--/, '');
    if (!(k in out)) {
      process.stderr.write(`engineio.js: unknown argument ${argv[i]}\n`);
      process.exit(2);
    }
    out[k] = typeof out[k] === 'number' ? Number(argv[i + 1]) : argv[i + 1];
  }
  return out;
}

function server(a) {
  const { Server } = require('engine.io');
  const srv = http.createServer((req, res) => { res.writeHead(404); res.end(); });
  const eio = new Server({ pingInterval: 5000, pingTimeout: 10000 });
  eio.attach(srv); // path /engine.io/
  eio.on('connection', (socket) => {
    console.log(JSON.stringify({ event: 'connection', sid: socket.id }));
    socket.on('message', (m) => socket.send(`${a.name}:${m}`));
  });
  srv.listen(a.port, '127.0.0.1', () => {
    console.log(JSON.stringify({ event: 'ready', port: srv.address().port, name: a.name }));
  });
}

function oneSession(a) {
  const { Socket } = require('engine.io-client');
  const opts = {
    transports: a.mode === 'websocket' ? ['websocket'] : a.mode === 'polling' ? ['polling'] : ['polling', 'websocket'],
    upgrade: a.mode === 'upgrade',
  };
  return new Promise((resolve) => {
    const s = { ok: false, backends: [], transport: '', errors: [] };
    const socket = new Socket(a.url, opts);
    let sent = 0;
    let upgraded = a.mode !== 'upgrade';
    const timer = setTimeout(() => finish('timeout'), 20000);
    function finish(err) {
      if (err) s.errors.push(String(err));
      clearTimeout(timer);
      s.transport = socket.transport ? socket.transport.name : '';
      socket.removeAllListeners();
      socket.close();
      resolve(s);
    }
    function next() {
      if (sent === a.msgs) {
        if (upgraded) {
          s.ok = s.errors.length === 0;
          finish();
        }
        return;
      }
      sent++;
      socket.send(`m${sent}`);
    }
    socket.on('open', next);
    socket.on('upgrade', () => {
      upgraded = true;
      if (sent === a.msgs) next();
    });
    socket.on('message', (m) => {
      const [backend, msg] = String(m).split(':');
      if (msg !== `m${sent}`) s.errors.push(`echo ${m} for m${sent}`);
      if (!s.backends.includes(backend)) s.backends.push(backend);
      next();
    });
    socket.on('error', (e) => finish(e && e.message ? e.message : e));
    socket.on('close', (reason) => { if (!s.ok) finish(`closed: ${reason}`); });
  });
}

async function clients(a) {
  const sessions = await Promise.all(Array.from({ length: a.n }, () => oneSession(a)));
  const ok = sessions.filter((s) => s.ok).length;
  console.log(JSON.stringify({ ok, failed: sessions.length - ok, sessions }));
  process.exit(0);
}

const a = args(process.argv);
if (process.argv[2] === 'server') server(a);
else if (process.argv[2] === 'clients') clients(a);
else {
  process.stderr.write('usage: node engineio.js server|clients ...\n');
  process.exit(2);
}
