// demo.js: a small Engine.IO v4 + Socket.IO v5 client (no dependencies) and the sioproxy demo page.
//
// Engine.IO: polling handshake with fetch, one long-poll GET outstanding at a time, POSTs of
// batched packets (0x1e-separated), the WebSocket upgrade (2probe / 3probe, pause polling, 5),
// answering server pings with pongs, a heartbeat watchdog, reconnection with jittered backoff.
// Socket.IO: CONNECT to "/", events, events with acks. Text packets only (the page sends no binary).
(function () {
  "use strict";

  var SEP = "\x1e";

  function EioClient(path, handlers) {
    this.path = path;
    this.h = handlers; // onOpen(sid), onTransport(name), onMessage(data), onClose(reason)
    this.sid = null;
    this.transport = "polling";
    this.ws = null;
    this.buf = [];
    this.posting = false;
    this.paused = false;
    this.closed = false;
    this.polling = null; // promise of the GET in flight
    this.watchdog = null;
    this.pingWindow = 45000;
  }

  EioClient.prototype.url = function (transport) {
    var q = "?EIO=4&transport=" + transport + "&t=" + Date.now().toString(36) + Math.random().toString(36).slice(2, 6);
    if (this.sid) q += "&sid=" + encodeURIComponent(this.sid);
    return this.path + q;
  };

  EioClient.prototype.wsUrl = function () {
    var proto = location.protocol === "https:" ? "wss:" : "ws:";
    return proto + "//" + location.host + this.url("websocket");
  };

  EioClient.prototype.open = function () {
    var self = this;
    fetch(this.url("polling"), { cache: "no-store" })
      .then(function (r) {
        if (!r.ok) throw new Error("handshake status " + r.status);
        return r.text();
      })
      .then(function (body) {
        var packets = body.split(SEP);
        var first = packets.shift();
        if (first.charAt(0) !== "0") throw new Error("no open packet");
        var info = JSON.parse(first.slice(1));
        self.sid = info.sid;
        self.pingWindow = info.pingInterval + info.pingTimeout;
        self.resetWatchdog();
        self.h.onOpen(info.sid);
        self.h.onTransport("polling");
        packets.forEach(function (p) { self.onPacket(p); });
        self.pollLoop();
        if (info.upgrades && info.upgrades.indexOf("websocket") >= 0 && window.WebSocket) self.probe();
      })
      .catch(function (e) { self.fail("handshake error: " + e.message); });
  };

  EioClient.prototype.pollLoop = function () {
    var self = this;
    if (this.closed || this.paused || this.transport !== "polling") { this.polling = null; return; }
    this.polling = fetch(this.url("polling"), { cache: "no-store" })
      .then(function (r) {
        if (!r.ok) throw new Error("status " + r.status);
        return r.text();
      })
      .then(function (body) {
        body.split(SEP).forEach(function (p) { self.onPacket(p); });
        self.pollLoop();
      })
      .catch(function (e) { self.polling = null; self.fail("xhr poll error: " + e.message); });
  };

  EioClient.prototype.onPacket = function (p) {
    if (this.closed || p === "") return;
    this.resetWatchdog();
    switch (p.charAt(0)) {
      case "1": this.fail("server close"); break;
      case "2": this.sendPacket("3" + p.slice(1)); break; // ping -> pong
      case "4": this.h.onMessage(p.slice(1)); break;
      case "6": break; // noop (ends a long poll during the upgrade)
    }
  };

  EioClient.prototype.sendPacket = function (p) {
    if (this.closed) return;
    if (this.transport === "websocket") { this.ws.send(p); return; }
    this.buf.push(p);
    this.flush();
  };

  EioClient.prototype.flush = function () {
    var self = this;
    if (this.posting || this.paused || this.closed || this.buf.length === 0) return;
    if (this.transport === "websocket") {
      this.buf.splice(0).forEach(function (p) { self.ws.send(p); });
      return;
    }
    var body = this.buf.splice(0).join(SEP);
    this.posting = fetch(this.url("polling"), {
      method: "POST", body: body, headers: { "Content-Type": "text/plain;charset=UTF-8" }
    }).then(function (r) {
      if (!r.ok) throw new Error("status " + r.status);
      self.posting = false;
      self.flush();
    }).catch(function (e) { self.posting = false; self.fail("xhr post error: " + e.message); });
  };

  // probe upgrades to WebSocket: 2probe / 3probe, then pause polling, wait for the GET and POST in
  // flight (the server answers the GET with a noop), send 5 and switch.
  EioClient.prototype.probe = function () {
    var self = this;
    var ws = new WebSocket(this.wsUrl());
    var done = false;
    var giveUp = function () { if (!done) { done = true; try { ws.close(); } catch (e) { /* ignore */ } } };
    ws.onopen = function () { ws.send("2probe"); };
    ws.onerror = giveUp;
    ws.onclose = function () {
      if (done && self.ws === ws) self.fail("transport close");
      giveUp();
    };
    ws.onmessage = function (ev) {
      if (done || String(ev.data) !== "3probe") { giveUp(); return; }
      self.paused = true;
      Promise.all([self.polling, self.posting]).catch(function () {}).then(function () {
        if (self.closed) { giveUp(); return; }
        if (done) { // the probe died while we paused: stay on polling
          self.paused = false;
          self.pollLoop();
          self.flush();
          return;
        }
        done = true;
        ws.send("5");
        self.ws = ws;
        self.transport = "websocket";
        self.paused = false;
        ws.onmessage = function (m) { self.onPacket(String(m.data)); };
        self.h.onTransport("websocket");
        self.flush();
      });
    };
  };

  EioClient.prototype.resetWatchdog = function () {
    var self = this;
    clearTimeout(this.watchdog);
    this.watchdog = setTimeout(function () { self.fail("ping timeout"); }, this.pingWindow);
  };

  EioClient.prototype.fail = function (reason) {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.watchdog);
    if (this.ws) { try { this.ws.close(); } catch (e) { /* ignore */ } }
    this.h.onClose(reason);
  };

  // SioClient speaks Socket.IO v5 on "/" over successive Engine.IO sessions, reconnecting with
  // exponential backoff (0.5 s doubling to 5 s, ±50 % jitter).
  function SioClient(path) {
    this.path = path;
    this.handlers = {};
    this.acks = {};
    this.nextId = 0;
    this.attempt = 0;
    this.eio = null;
    this.connected = false;
  }

  SioClient.prototype.on = function (name, fn) { this.handlers[name] = fn; return this; };

  SioClient.prototype.fire = function (name) {
    var fn = this.handlers[name];
    if (fn) fn.apply(null, Array.prototype.slice.call(arguments, 1));
  };

  SioClient.prototype.connect = function () {
    var self = this;
    var eio = new EioClient(this.path, {
      onOpen: function (sid) { self.fire("session", sid); eio.sendPacket("40"); },
      onTransport: function (name) { self.fire("transport", name); },
      onMessage: function (data) { self.onSio(data); },
      onClose: function (reason) {
        if (self.eio !== eio) return;
        self.connected = false;
        self.acks = {};
        var delay = Math.min(5000, 500 * Math.pow(2, self.attempt++)) * (0.5 + Math.random());
        self.fire("disconnect", reason, delay);
        setTimeout(function () { self.connect(); }, delay);
      }
    });
    this.eio = eio;
    eio.open();
  };

  SioClient.prototype.onSio = function (data) {
    var type = data.charAt(0);
    var rest = data.slice(1);
    if (rest.charAt(0) === "/") return; // other namespaces: not used here
    var m = /^(\d*)([\s\S]*)$/.exec(rest);
    var id = m[1] === "" ? -1 : parseInt(m[1], 10);
    var payload = m[2] ? JSON.parse(m[2]) : null;
    switch (type) {
      case "0": this.connected = true; this.attempt = 0; this.fire("connect", payload && payload.sid); break;
      case "1": this.eio.fail("io server disconnect"); break;
      case "2":
        if (Array.isArray(payload) && payload.length > 0) this.fire.apply(this, payload);
        break;
      case "3":
        var fn = this.acks[id];
        delete this.acks[id];
        if (fn) fn.apply(null, payload || []);
        break;
      case "4": this.fire("connect_error", payload); break;
    }
  };

  // emit(name, ...args[, ackFn])
  SioClient.prototype.emit = function (name) {
    var args = Array.prototype.slice.call(arguments);
    var head = "42";
    if (typeof args[args.length - 1] === "function") {
      var id = this.nextId++;
      this.acks[id] = args.pop();
      head += id;
    }
    this.eio.sendPacket(head + JSON.stringify(args));
  };

  // The page.
  var $ = function (id) { return document.getElementById(id); };

  function setTransport(name) {
    var el = $("transport");
    el.textContent = name;
    el.className = name;
  }

  function addMessage(m) {
    var li = document.createElement("li");
    var meta = document.createElement("span");
    meta.className = "meta";
    meta.textContent = new Date(m.at).toLocaleTimeString() + " via " + m.backend + " · " + String(m.from).slice(0, 6);
    li.appendChild(meta);
    li.appendChild(document.createTextNode(m.text));
    var list = $("messages");
    list.appendChild(li);
    list.scrollTop = list.scrollHeight;
  }

  function whoami(sock) {
    sock.emit("whoami", function (info) {
      $("backend").textContent = info.backend;
      setTransport(info.transport);
    });
  }

  var sock = new SioClient("/socket.io/");
  sock
    .on("session", function (sid) { $("sid").textContent = sid; $("status").textContent = "session open"; })
    .on("transport", function (name) { setTransport(name); if (sock.connected) whoami(sock); })
    .on("connect", function () {
      $("status").textContent = "connected";
      $("send").disabled = false;
      whoami(sock);
    })
    .on("disconnect", function (reason, delay) {
      $("status").textContent = "disconnected (" + reason + "), reconnecting in " + (delay / 1000).toFixed(1) + " s";
      $("send").disabled = true;
      setTransport("–");
    })
    .on("chat", addMessage);

  $("chat").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var text = $("text").value.trim();
    if (!text || !sock.connected) return;
    sock.emit("chat", text, function (res) {
      if (res && res.error) $("status").textContent = res.error;
    });
    $("text").value = "";
  });

  window.sioDemo = sock; // for debugging and browser tests
  sock.connect();
})();
