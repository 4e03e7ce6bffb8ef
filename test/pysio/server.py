#!/usr/bin/python3
# A real python-socketio server (Debian's python3-socketio 5.x, python3-engineio 4.x) for the
# sioproxy end-to-end tests: the second Socket.IO implementation behind the proxy, beside
# test/node/backend.js. It runs python-socketio's AsyncServer in aiohttp (async_mode "aiohttp"),
# with the library's defaults (ping 25 s / 20 s, same-origin CORS, HTTP compression, aiohttp's
# permessage-deflate on WebSockets). Why aiohttp (python3-aiohttp): it is python-engineio 4.3's
# first-choice async mode and serves long-polling and WebSocket itself, and the same package is the
# transport of python-socketio's asyncio client (client.py). Debian's other WebSocket-capable way,
# an ASGI app under uvicorn (python3-uvicorn 0.17), needs a WebSocket implementation beside it
# (python3-wsproto) and goes through python-engineio's ASGI adapter; the sync servers (eventlet,
# gevent) would add a green-thread stack that none of the rest uses.
#
#   /usr/bin/python3 server.py --port P|0 --name NAME
#
# It prints the same JSON lines as backend.js, so the Go tests read both alike:
#   {"event":"ready","port":P,"name":NAME,"version":"python-socketio X"}
#   {"event":"connection","sid":SID,"transport":"polling"|"websocket"}
#   {"event":"disconnect","sid":SID,"reason":"","requests":N}
#   {"event":"connection_error","code":1,"message":"Invalid session","sid":SID,"url":URL}
# SID is the Engine.IO sid. "requests" counts the HTTP requests and WebSocket upgrades that
# carried it, the handshake included. A connection_error means a request carried a sid that this
# server does not hold (python-engineio answers it 400 "Invalid session <sid>"): when the sid was
# never issued here, the proxy sent a session's request to the wrong backend.
#
# Socket.IO handlers, as in backend.js: echo (ack {backend, data}), bin (ack (bytes, backend)),
# whoami (ack {backend, transport, sid}).
import argparse
import asyncio
import json
import signal
import socket
import sys

import socketio
from aiohttp import web


def log(**fields):
    sys.stdout.write(json.dumps(fields, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    args = ap.parse_args()

    sio = socketio.AsyncServer(async_mode="aiohttp")
    app = web.Application(middlewares=[count_requests(sio)])
    sio.attach(app)  # routes GET/POST/OPTIONS /socket.io/ (an exact path, not a prefix)
    requests = app["requests"] = {}  # live Engine.IO sid -> requests that carried it

    # Engine.IO-level connect and disconnect, wrapped around python-socketio's own handlers (like
    # backend.js's io.engine events).
    on_connect, on_disconnect = sio._handle_eio_connect, sio._handle_eio_disconnect

    async def eio_connect(eio_sid, environ):
        requests[eio_sid] = 1  # the handshake, which carried no sid
        transport = "websocket" if "transport=websocket" in environ.get("QUERY_STRING", "") else "polling"
        log(event="connection", sid=eio_sid, transport=transport)
        await on_connect(eio_sid, environ)

    async def eio_disconnect(eio_sid):
        log(event="disconnect", sid=eio_sid, reason="", requests=requests.pop(eio_sid, 0))
        await on_disconnect(eio_sid)

    sio.eio.on("connect", eio_connect)
    sio.eio.on("disconnect", eio_disconnect)

    def transport_of(sid):
        eio_sid = sio.manager.eio_sid_from_sid(sid, "/")
        s = sio.eio.sockets.get(eio_sid)
        return eio_sid, ("websocket" if s is not None and s.upgraded else "polling")

    @sio.event
    async def echo(sid, data=None):
        return {"backend": args.name, "data": data}

    @sio.event
    async def bin(sid, data=None):
        return (bytes(data) if isinstance(data, (bytes, bytearray)) else b""), args.name

    @sio.event
    async def whoami(sid):
        eio_sid, transport = transport_of(sid)
        return {"backend": args.name, "transport": transport, "sid": eio_sid}

    asyncio.run(serve(app, args))


def count_requests(sio):
    """aiohttp middleware: counts each request that carries a sid held here, and logs the others."""

    @web.middleware
    async def middleware(request, handler):
        sid = request.query.get("sid")
        if sid is not None:
            live = request.app["requests"]
            if sid in live:
                live[sid] += 1
            elif sid not in sio.eio.sockets:
                log(event="connection_error", code=1, message="Invalid session", sid=sid, url=request.path_qs)
        return await handler(request)

    return middleware


async def serve(app, args):
    # Port 0: the kernel picks a free port, reported on the ready line (no race for a port).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock, backlog=1024).start()
    log(event="ready", port=sock.getsockname()[1], name=args.name,
        version="python-socketio %s, python-engineio %s" % (version("python-socketio"), version("python-engineio")))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def version(dist):
    try:
        from importlib.metadata import version as v
        return v(dist)
    except Exception:
        return "?"


if __name__ == "__main__":
    main()
