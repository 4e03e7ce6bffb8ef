#!/usr/bin/python3
# Real python-socketio client sessions against a URL, for the sioproxy end-to-end tests: the
# second Socket.IO client implementation, beside test/node/clients.js.
#
#   /usr/bin/python3 client.py --url http://127.0.0.1:PORT --runs RUN[,RUN...] [--emits 5] [--timeout-ms 30000]
#   RUN = CLIENT:MODE:N[:vanish]    e.g. async:polling:20,sync:websocket:10,async:polling:6:vanish
#
# The runs go one after the other in this one process (Python starts slowly on a loaded machine);
# the N sessions of a run go at once. CLIENT async is socketio.AsyncClient (HTTP and WebSocket by
# aiohttp); sync is socketio.Client (HTTP by requests, WebSocket by websocket-client), a thread
# per session. MODE polling = transports ["polling"]; upgrade = ["polling", "websocket"]
# (python-engineio probes and upgrades right after the handshake, before it starts polling);
# websocket = ["websocket"].
#
# Each session connects (no reconnection), sends `emits` acked `echo` events, one binary round trip
# via `bin`, asks `whoami` and disconnects; anything unexpected is an error of that session. The
# sessions of a `vanish` run do not disconnect: they stay connected (polling on) until the process
# ends, which it does at once after its last run, cutting their long-polls and WebSockets
# mid-flight, as a killed client or a lost network does (and as python-socketio's own
# disconnect() often does, see close_sync).
#
# Every HTTP request and WebSocket handshake a session makes is recorded from its own HTTP client:
# the handshake (no sid) and every later request must carry the session's sid and succeed, and
# "requests" says how many completed before the session began to disconnect: the backend that owns
# the session must have counted at least as many (test/node/backend.js "disconnect" events).
#
# stdout: one JSON summary line per run, shaped like clients.js's ({ok, failed, byBackend,
# sessions}) plus client, mode, end; each session with, besides id/ok/backends/transport/sid/
# errors/ms: backendSid (the sid as the backend knows it, from whoami), requests, statuses
# ({status: count} of those requests). The exit code is 0 even when sessions fail: the caller asserts.
import argparse
import asyncio
import collections
import json
import os
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import aiohttp
import engineio
import requests
import socketio
import websocket

TRANSPORTS = {"polling": ["polling"], "upgrade": ["polling", "websocket"], "websocket": ["websocket"]}

Run = collections.namedtuple("Run", "client mode n end")


class Recorder:
    """The HTTP requests and WebSocket handshakes of one session, as its own client made them."""

    def __init__(self):
        self.lock = threading.Lock()
        self.done = []  # (sid or None, status) in completion order
        self.frozen = None  # how many had completed when the session began to disconnect

    def note(self, url, status):
        sid = urllib.parse.parse_qs(urllib.parse.urlsplit(str(url)).query).get("sid", [None])[0]
        with self.lock:
            self.done.append((sid, status))

    def freeze(self):
        with self.lock:
            self.frozen = len(self.done)

    def check(self, res):
        """Fills res["requests"] and res["statuses"]; errors for requests of another sid or failed ones."""
        with self.lock:
            done = self.done[: self.frozen if self.frozen is not None else len(self.done)]
        statuses = {}
        handshakes = 0
        for sid, status in done:
            statuses[str(status)] = statuses.get(str(status), 0) + 1
            if sid is None:
                handshakes += 1
            elif sid != res["sid"]:
                res["errors"].append("a request carried another sid than the session's")
            if status not in (200, 101):
                res["errors"].append("a request (%s) was answered %s" % ("with sid" if sid else "handshake", status))
        if handshakes != 1:
            res["errors"].append("%d handshakes, want 1" % handshakes)
        res["requests"] = len(done)
        res["statuses"] = statuses


def new_result(i):
    return {"id": i, "ok": False, "backends": [], "transport": "", "sid": "", "backendSid": "",
            "errors": [], "ms": 0, "requests": 0, "statuses": {}}


def exchanges(res, i, backends, emits):
    """The session's exchanges as a generator: yields (event, data), is sent the ack."""
    for k in range(emits):
        data = {"i": k, "id": i, "text": "hello %d/%d \u2713" % (i, k)}
        ack = yield "echo", data
        if not isinstance(ack, dict) or ack.get("data") != data:
            raise RuntimeError("echo %d: wrong ack %r" % (k, ack))
        backends.add(ack["backend"])
    payload = bytes((k * 31 + i) & 0xFF for k in range(1024 + i % 97))
    ack = yield "bin", payload
    if not isinstance(ack, (list, tuple)) or len(ack) != 2 or ack[0] != payload:
        raise RuntimeError("bin: bytes differ (got %s)" % type(ack).__name__)
    backends.add(ack[1])
    who = yield "whoami", None
    backends.add(who["backend"])
    res["backendSid"] = who["sid"]
    res["transport"] = who["transport"]


def finish(res, mode, client_transport, backends, started):
    want = "polling" if mode == "polling" else "websocket"
    if res["transport"] != want or client_transport != want:
        res["errors"].append("transport: backend says %s, client says %s, want %s" % (res["transport"], client_transport, want))
    if res["backendSid"] and not res["sid"].endswith(res["backendSid"]):
        res["errors"].append("client sid does not end with the backend's sid")
    res["backends"] = sorted(backends)
    res["ms"] = int((time.time() - started) * 1000)
    res["ok"] = not res["errors"] and len(res["backends"]) == 1
    return res


# ---- asyncio client (aiohttp) ----

async def async_session(run, i, args):
    started = time.time()
    res, rec, backends, state = new_result(i), Recorder(), set(), {"closing": False}
    step = max(1.0, args.timeout_ms / 3000)
    trace = aiohttp.TraceConfig()

    async def on_end(session, ctx, params):
        rec.note(params.url, params.response.status)

    async def on_exc(session, ctx, params):
        rec.note(params.url, "error: %s" % params.exception)

    trace.on_request_end.append(on_end)
    trace.on_request_exception.append(on_exc)
    http = aiohttp.ClientSession(trace_configs=[trace])
    sio = socketio.AsyncClient(reconnection=False, http_session=http, request_timeout=step, handle_sigint=False)

    @sio.event
    async def disconnect():
        if not state["closing"]:
            res["errors"].append("disconnect before the end")

    transport = ""
    try:
        await asyncio.wait_for(sio.connect(args.url, transports=TRANSPORTS[run.mode], wait_timeout=step), 2 * step)
        res["sid"] = sio.eio.sid
        gen, ack = exchanges(res, i, backends, args.emits), None
        try:
            while True:
                event, data = gen.send(ack)
                ack = await sio.call(event, data, timeout=step)
        except StopIteration:
            pass
    except Exception as e:  # noqa: BLE001 - every failure is the session's error
        res["errors"].append("%s: %s" % (type(e).__name__, e))
    finally:
        rec.freeze()
        state["closing"] = True
        transport = sio.transport() if sio.connected else ""
        if run.end != "vanish":
            try:
                await close_async(sio, step)
            except Exception as e:  # noqa: BLE001
                res["errors"].append("disconnect: %s" % e)
            if not http.closed:
                await http.close()
    rec.check(res)
    return finish(res, run.mode, transport, backends, started)


async def close_async(sio, timeout):
    """Ends the session so that the server learns of it at once: see close_sync."""
    eio = sio.eio
    if eio.state != "connected":
        return
    if eio.current_transport == "websocket":
        await eio.ws.close()
    else:
        await eio._send_packet(engineio.packet.Packet(engineio.packet.CLOSE))
    await asyncio.wait_for(asyncio.shield(eio.read_loop_task), timeout)


async def async_run(run, args):
    return await asyncio.gather(*(async_session(run, i, args) for i in range(run.n)))


# ---- sync client (requests, websocket-client) ----

local = threading.local()  # the Recorder of the session running in this thread
_create_connection = websocket.create_connection


def counting_create_connection(url, *a, **kw):
    """websocket.create_connection as python-engineio calls it, recorded for the calling session."""
    rec = getattr(local, "rec", None)
    try:
        ws = _create_connection(url, *a, **kw)
    except Exception as e:
        if rec is not None:
            rec.note(url, "error: %s" % e)
        raise
    if rec is not None:
        rec.note(url, ws.getstatus())
    return ws


# python-engineio's sync client looks the function up on the module at each connection, in the
# thread that calls connect().
websocket.create_connection = counting_create_connection


def sync_session(run, i, args):
    started = time.time()
    res, rec, backends, state = new_result(i), Recorder(), set(), {"closing": False}
    step = max(1.0, args.timeout_ms / 3000)
    local.rec = rec
    http = requests.Session()
    http.trust_env = False  # no proxy from the environment
    http.hooks["response"].append(lambda r, *a, **kw: rec.note(r.url, r.status_code))
    sio = socketio.Client(reconnection=False, http_session=http, request_timeout=step, handle_sigint=False)

    @sio.event
    def disconnect():
        if not state["closing"]:
            res["errors"].append("disconnect before the end")

    transport = ""
    try:
        sio.connect(args.url, transports=TRANSPORTS[run.mode], wait_timeout=step)
        res["sid"] = sio.eio.sid
        gen, ack = exchanges(res, i, backends, args.emits), None
        try:
            while True:
                event, data = gen.send(ack)
                ack = sio.call(event, data, timeout=step)
        except StopIteration:
            pass
    except Exception as e:  # noqa: BLE001 - every failure is the session's error
        res["errors"].append("%s: %s" % (type(e).__name__, e))
    finally:
        rec.freeze()
        state["closing"] = True
        transport = sio.transport() if sio.connected else ""
        if run.end != "vanish":
            try:
                close_sync(sio, step)
            except Exception as e:  # noqa: BLE001
                res["errors"].append("disconnect: %s" % e)
            http.close()
    rec.check(res)
    return finish(res, run.mode, transport, backends, started)


def close_sync(sio, timeout):
    """Ends the session so that the server learns of it at once.

    Not python-socketio 5.7's disconnect(), whose close often never reaches the server: it queues
    DISCONNECT and CLOSE, then marks the Engine.IO client "disconnecting", and the write loop, which
    sends only while "connected", drops what it has not taken yet (when it is still busy with an
    earlier POST, the CLOSE); and it aborts: the HTTP session is closed at once (asyncio client),
    the write loop is a daemon thread (sync client), so the packets die with the program. The
    server then keeps the session until its ping timeout, or until the cut long-poll tells it.
    Here: over polling, CLOSE is queued while still connected; over WebSocket, the socket is closed
    (what engine.io servers take as the end: socket.io@4 ignores a close packet there). The session
    has ended when the server has closed it (that ends the read loop).
    """
    eio = sio.eio
    if eio.state != "connected":
        return
    if eio.current_transport == "websocket":
        eio.ws.close()
    else:
        eio._send_packet(engineio.packet.Packet(engineio.packet.CLOSE))
    eio.read_loop_task.join(timeout)
    if eio.read_loop_task.is_alive():
        raise TimeoutError("the server did not end the session within %.0f s" % timeout)


def sync_run(run, args):
    with ThreadPoolExecutor(max_workers=run.n) as pool:
        return list(pool.map(lambda i: sync_session(run, i, args), range(run.n)))


# ---- runs ----

def parse_runs(spec):
    runs = []
    for item in spec.split(","):
        f = item.split(":")
        if len(f) not in (3, 4) or f[0] not in ("async", "sync") or f[1] not in TRANSPORTS or \
                (len(f) == 4 and f[3] != "vanish"):
            raise SystemExit("client.py: bad run %r (want CLIENT:MODE:N[:vanish])" % item)
        runs.append(Run(f[0], f[1], int(f[2]), f[3] if len(f) == 4 else "close"))
    return runs


async def main_async(args):
    loop = asyncio.get_running_loop()
    for run in parse_runs(args.runs):
        started = time.time()
        if run.client == "async":
            sessions = await async_run(run, args)
        else:
            sessions = await loop.run_in_executor(None, sync_run, run, args)
        by_backend = {}
        for s in sessions:
            for b in s["backends"]:
                by_backend[b] = by_backend.get(b, 0) + 1
        ok = sum(1 for s in sessions if s["ok"])
        summary = {"ok": ok, "failed": len(sessions) - ok, "client": run.client, "mode": run.mode, "end": run.end,
                   "ms": int((time.time() - started) * 1000), "byBackend": by_backend, "sessions": sessions}
        sys.stdout.write(json.dumps(summary, separators=(",", ":")) + "\n")
        sys.stdout.flush()
    # No cleanup, not even the event loop's: the kernel closes the sockets of the vanish runs'
    # sessions, mid-flight, as the process ends.
    os._exit(0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--runs", required=True)
    ap.add_argument("--emits", type=int, default=5)
    ap.add_argument("--timeout-ms", type=int, default=30000)
    args = ap.parse_args()
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
