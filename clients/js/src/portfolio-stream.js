// @ts-check
// portfolio-stream.js: the portfolio-ws stream client for browsers and Node 18+ (an ES module, no
// build step; types in portfolio-stream.d.ts). The npm package `portfolio-ws-client` (clients/js)
// and the dashboard (/static/portfolio-stream.js, a link to this file) use this same file.
//
//   import { PortfolioStream } from "/static/portfolio-stream.js";   // or from "portfolio-ws-client"
//   const stream = new PortfolioStream({
//     onPosition: (p, meta) => ...,   // meta.removed is true for "quantity": "0" (remove the row)
//     onOrder: (o) => ..., onAccount: (a) => ..., onTrade: (t) => ...,
//     onSnapshot: (data, meta) => ...,  // before its items: replace (don't merge) the channels it holds
//     onStatus: (status, detail) => ..., // connecting | connected | reconnecting | polling | offline
//     onStaleness: (level, ageMs) => ...,  // live | delayed | stale
//   });
//   connectionState(stream.status, stream.staleness)  // the ONE word a page shows (see below)
//   stream.start();
//
// In Node: new PortfolioStream({ url: "ws://host:5000/ws/portfolio", sessionId, WebSocket })
// with WebSocket from the `ws` package (or the global one, Node 22+); the session goes as a Cookie.
//
// Batches and snapshots are unpacked into the per-item callbacks; `stream.portfolio` holds the
// current state (positions and orders as Maps, account, trades oldest first). Behaviour follows
// docs/protocol.md: after a close, the close-policy table (close-policy.js: by close code and the
// cause the server names in an `error` first, never by reason text), full-jitter backoff,
// `resumeFrom` (the highest seq applied) after every reconnect, a JSON ping with a pong deadline, and REST polling of /api/portfolio when
// streaming is disabled, the per-user connection limit is hit, or the socket keeps failing.
// Money and quantities stay the server's decimal strings.

import { backoffDelay, closePolicy, nextStep } from "./close-policy.js";

export { backoffDelay, closePolicy, nextStep, socketRetryDelay, CLOSE_CAUSES, CLOSE_CODES } from "./close-policy.js";

export const CHANNELS = Object.freeze(["positions", "orders", "account", "trades"]);

export const DEFAULTS = Object.freeze({
  url: null,                     // default in a browser: ws(s)://<this page's host>/ws/portfolio
  portfolioUrl: null,            // default: /api/portfolio on the url's host
  sessionId: null,               // outside a browser: sent as the session cookie (socket and polling)
  channels: CHANNELS,
  baseDelayMs: 1000,             // backoff: random(0, min(maxDelayMs, baseDelayMs * 2^attempt))
  maxDelayMs: 30000,
  slowDownDelayMs: 5000,         // added to the backoff after 1013 (capacity, slow consumer)
  maxFailedAttempts: 10,         // consecutive failed connects before falling back to polling
  pingIntervalMs: 15000,
  pongTimeoutMs: 10000,
  connectTimeoutMs: 10000,       // from opening the socket to info CONNECTED
  liveMs: 5000,                  // staleness: live below this since the last message or pong,
  delayedMs: 30000,              //   delayed below this, stale beyond
  stalenessCheckMs: 1000,
  pollIntervalMs: 5000,          // GET /api/portfolio while polling
  socketRetryMs: 4000,           // while polling the socket is retried after min(this, 1 s * 2^n), jittered
                                 //   to 50-100% of it: streaming back = live again within ~4 s
  maxTrades: 100,                // trades kept in stream.portfolio.trades
});

const EVENT_NAMES = ["position", "order", "account", "trade", "snapshot", "message", "applied", "status",
                     "staleness", "info", "resumed", "error", "close"];
const DATA_TYPES = new Set(["position_update", "order_update", "account_update", "trade_executed", "batch",
                            "snapshot"]);
const CLOSED_BY_CLIENT = 4000;   // our code when we abandon a socket (pong or connect timeout)

/** The page's own stream URL; only in a browser, and only when no url is given. */
function defaultUrl() {
  const loc = globalThis.location;
  if (!loc || !loc.host) throw new TypeError("PortfolioStream: `url` is required outside a browser page");
  return `${loc.protocol === "https:" ? "wss" : "ws"}://${loc.host}/ws/portfolio`;
}

/** GET /api/portfolio on the stream's host (http for ws, https for wss). */
function portfolioUrlBeside(wsUrl) {
  return new URL("/api/portfolio", wsUrl.replace(/^ws/i, "http")).toString();
}

/**
 * The one state a page shows for the connection, so it can never show two that contradict each
 * other (say "offline" beside a green "live"): what the socket is doing and, only while a socket is
 * connected, how fresh its data is.
 *   live | delayed | stale   connected; last message or pong under liveMs / delayedMs / beyond
 *   polling                  streaming unavailable, GET /api/portfolio every pollIntervalMs
 *   connecting | reconnecting | offline
 */
export function connectionState(status, staleness) {
  return status === "connected" ? staleness : status;
}

/** Why the client stops or polls, for onStatus: auth | refused | closed; disabled | limit | unreachable. */
function why(action, code, cause) {
  if (action === "stop") {
    if (cause === "SESSION_EXPIRED" || (code === 1008 && !cause) || cause === "AUTHENTICATION_REQUIRED") return "auth";
    return code === 1000 ? "closed" : "refused";
  }
  if (cause === "STREAMING_DISABLED") return "disabled";
  if (cause === "CONNECTION_LIMIT") return "limit";
  return "unreachable";
}

export class PortfolioStream {
  constructor(options = {}) {
    this.options = { ...DEFAULTS };
    for (const [key, value] of Object.entries(options)) if (value !== undefined) this.options[key] = value;
    // `location` is read only in a page that gave no url: then both go to the page's own host.
    if (!this.options.url) {
      this.options.url = defaultUrl();
      this.options.portfolioUrl = this.options.portfolioUrl || "/api/portfolio";
    }
    this.options.portfolioUrl = this.options.portfolioUrl || portfolioUrlBeside(this.options.url);
    this._WebSocket = options.WebSocket || globalThis.WebSocket;
    if (typeof this._WebSocket !== "function") {
      throw new TypeError("PortfolioStream: no WebSocket here; pass one (e.g. `WebSocket` from the ws package)");
    }
    this._fetch = options.fetch || (globalThis.fetch ? globalThis.fetch.bind(globalThis) : null);
    this._random = options.random || Math.random;
    this._now = options.now || (() => Date.now());

    this.portfolio = { positions: new Map(), orders: new Map(), account: null, trades: [] };
    this.status = "offline";
    this.staleness = "stale";
    this.lastSeq = null;           // the resumeFrom of the next connect: the highest seq applied
    this.lastMessageAt = null;     // ms epoch of the last message, pong or successful poll
    this.attempt = 0;              // consecutive connects that failed (reset by CONNECTED)
    this.pollReason = null;        // why we poll: disabled | limit | unreachable

    this._handlers = new Map(EVENT_NAMES.map((name) => [name, new Set()]));
    for (const name of EVENT_NAMES) {
      const fn = options["on" + name[0].toUpperCase() + name.slice(1)];
      if (typeof fn === "function") this.on(name, fn);
    }
    this._ws = null;
    this._backoffExponent = 0;     // reset by CONNECTED, +1 per scheduled reconnect
    this._connected = false;       // the current socket got info CONNECTED
    this._closeCause = null;       // data.code of the error naming why the current socket closes
    this._running = false;
    this._timers = {};             // reconnect, connect, ping, pong, poll, socketRetry, staleness
    this._pollGeneration = 0;
    this._pollInFlight = false;
    this._socketRetries = 0;       // socket retries since polling started
  }

  /** connectionState(status, staleness): the one word to show. */
  get state() {
    return connectionState(this.status, this.staleness);
  }

  /** Register a callback; returns a function that removes it. */
  on(name, fn) {
    const set = this._handlers.get(name);
    if (!set) throw new Error(`unknown event ${name}; one of ${EVENT_NAMES.join(", ")}`);
    set.add(fn);
    return () => set.delete(fn);
  }

  start() {
    if (this._running) return this;
    this._running = true;
    this._setStatus("connecting", {});
    this._timers.staleness = setInterval(() => this._checkStaleness(), this.options.stalenessCheckMs);
    this._open();
    return this;
  }

  /** Close for good (code 1000): no reconnect, no polling. */
  stop() {
    this._running = false;
    this._stopPolling();
    this._dropSocket(1000, "Client closed");
    for (const key of Object.keys(this._timers)) this._clearTimer(key);
    this._setStatus("offline", { why: "stopped" });
  }

  /** Skip the wait: try the socket now (e.g. on the browser's `online` event). */
  reconnectNow() {
    if (!this._running || this._ws) return;
    this._clearTimer("reconnect");
    this._clearTimer("socketRetry");
    this._open();
  }

  // ---- socket ---------------------------------------------------------------------------------

  _open() {
    this._clearTimer("reconnect");
    this._clearTimer("socketRetry");
    let ws;
    this._closeCause = null;
    try {
      const cookie = this.options.sessionId ? { headers: { Cookie: `session=${this.options.sessionId}` } } : null;
      ws = cookie ? new this._WebSocket(this.options.url, cookie) : new this._WebSocket(this.options.url);
    } catch (err) {
      this._emit("error", { code: "CONNECT_FAILED", message: String(err), details: {} });
      this._afterClose(1006, "");
      return;
    }
    this._ws = ws;
    this._connected = false;
    ws.onopen = () => {
      const sub = { type: "subscribe", channels: [...this.options.channels] };
      if (this.lastSeq !== null) sub.resumeFrom = this.lastSeq;
      ws.send(JSON.stringify(sub));   // safe before CONNECTED: the server queues it
    };
    ws.onmessage = (ev) => this._onMessage(ev.data);
    ws.onerror = () => {};            // a close event always follows
    ws.onclose = (ev) => {
      if (this._ws !== ws) return;
      this._ws = null;
      this._afterClose(ev.code, ev.reason || "");
    };
    this._timers.connect = setTimeout(() => this._abandon("Connect timeout"), this.options.connectTimeoutMs);
  }

  /** Give up on the current socket without waiting for its close handshake. */
  _abandon(reason) {
    if (!this._ws) return;
    this._dropSocket(CLOSED_BY_CLIENT, reason);
    this._afterClose(CLOSED_BY_CLIENT, reason);
  }

  _dropSocket(code, reason) {
    const ws = this._ws;
    this._ws = null;
    this._connected = false;
    for (const key of ["connect", "ping", "pong"]) this._clearTimer(key);
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onclose = null;
    try { ws.close(code, reason); } catch (_) { /* already closing */ }
  }

  _afterClose(code, reason) {
    const wasConnected = this._connected;
    this._connected = false;
    for (const key of ["connect", "ping", "pong"]) this._clearTimer(key);
    const cause = code === 1006 || code === CLOSED_BY_CLIENT ? null : this._closeCause;
    this._closeCause = null;
    this._emit("close", { code, reason, cause, wasConnected });
    if (!this._running) return;
    if (!wasConnected) this.attempt += 1;
    // The close-policy table (close-policy.js), by code and cause; the reason is only shown.
    const step = nextStep(code, cause, { failures: this.attempt, polling: this.pollReason !== null,
                                         attempt: this._backoffExponent, retries: this._socketRetries },
                          this.options, this._random);
    if (step.action === "stop") {
      this._running = false;
      this._stopPolling();
      for (const key of Object.keys(this._timers)) if (key !== "staleness") this._clearTimer(key);
      this._setStatus("offline", { why: why("stop", code, cause), code, reason, cause });
      return;
    }
    if (step.action === "poll") {
      this._socketRetries += 1;
      if (closePolicy(code, cause).action === "poll") return this._startPolling(why("poll", code, cause), { code, reason, cause }, step.delayMs);
      if (this.pollReason) return this._scheduleSocketRetry(step.delayMs);   // a retry from polling failed
      return this._startPolling("unreachable", { code, reason, cause }, step.delayMs);
    }
    // Exponent 0 for the first retry after CONNECTED, then 1, 2, ... (docs/protocol.md section 8).
    this._backoffExponent += 1;
    this._setStatus("reconnecting", { code, reason, cause, attempt: this.attempt, delayMs: step.delayMs });
    this._timers.reconnect = setTimeout(() => this._open(), step.delayMs);
  }

  _onMessage(raw) {
    let m;
    try {
      m = JSON.parse(raw);
    } catch (_) {
      return;
    }
    this._touch();
    this._emit("message", m);
    switch (m.type) {
      case "info": return this._onInfo(m);
      case "pong":
        this._clearTimer("pong");
        return;
      case "error": {
        const d = m.data || {};
        // The cause of the close that follows (machine-readable closes: docs/protocol.md section 10).
        if (d.details && typeof d.details.closeCode === "number") this._closeCause = d.code;
        return this._emit("error", d);
      }
      default:
        if (DATA_TYPES.has(m.type)) this._applyMessage(m, "live");
    }
  }

  _onInfo(m) {
    const { code, details } = m.data || {};
    if (code === "CONNECTED") {
      this._connected = true;
      this.attempt = 0;
      this._backoffExponent = 0;
      this._clearTimer("connect");
      this._stopPolling();
      this._timers.ping = setInterval(() => this._ping(), this.options.pingIntervalMs);
      this._setStatus("connected", { connectionId: details && details.connectionId });
    } else if (code === "RESUMED") {
      if (details && details.recovered) this.lastSeq = Math.max(this.lastSeq ?? 0, details.to);
      this._emit("resumed", details);
    }
    this._emit("info", m.data);
  }

  _ping() {
    if (!this._ws || this._timers.pong) return;
    try {
      this._ws.send(JSON.stringify({ type: "ping" }));
    } catch (_) {
      return;
    }
    this._timers.pong = setTimeout(() => this._abandon("Pong timeout"), this.options.pongTimeoutMs);
  }

  // ---- polling fallback -----------------------------------------------------------------------

  _startPolling(why, detail, retryMs) {
    this.pollReason = why;
    this._setStatus("polling", { why, ...detail, delayMs: retryMs });
    if (this._timers.poll === undefined) {
      this._timers.poll = setInterval(() => this._poll(), this.options.pollIntervalMs);
      this._poll();
    }
    this._scheduleSocketRetry(retryMs);
  }

  /** While polling, the socket is tried again after `delayMs` (nextStep: socketRetryDelay). */
  _scheduleSocketRetry(delayMs) {
    this._clearTimer("socketRetry");
    this._timers.socketRetry = setTimeout(() => this._open(), delayMs);
  }

  _stopPolling() {
    this.pollReason = null;
    this._socketRetries = 0;
    this._pollGeneration += 1;       // a poll in flight is now ignored
    this._pollInFlight = false;
    this._clearTimer("poll");
    this._clearTimer("socketRetry");
  }

  async _poll() {
    if (this._pollInFlight) return;
    const generation = this._pollGeneration;
    this._pollInFlight = true;
    let response, body;
    try {
      /** @type {Record<string, string>} */
      const headers = { Accept: "application/json" };
      if (this.options.sessionId) headers.Cookie = `session=${this.options.sessionId}`;
      if (!this._fetch) throw new TypeError("no fetch here: pass one");
      response = await this._fetch(this.options.portfolioUrl, { credentials: "same-origin", cache: "no-store", headers });
      body = response.ok ? await response.json() : null;
    } catch (err) {
      response = null;
    }
    if (generation !== this._pollGeneration) return;   // the socket took over meanwhile
    this._pollInFlight = false;
    if (response && response.status === 401) {
      this._running = false;
      this._stopPolling();
      this._dropSocket(1000, "Client closed");
      this._clearTimer("reconnect");
      this._setStatus("offline", { why: "auth", code: 401, reason: "Authentication required" });
      return;
    }
    if (!body || body.type !== "snapshot") {
      this._setStatus("offline", { why: this.pollReason, pollFailed: true });
      return;
    }
    if (this.status !== "polling") this._setStatus("polling", { why: this.pollReason });
    this._touch();
    this._applyMessage(body, "poll");
  }

  // ---- state ----------------------------------------------------------------------------------

  _applyMessage(m, source) {
    const meta = { seq: m.seq, type: m.type, source: m.type === "snapshot" ? (source === "poll" ? "poll" : "snapshot") : source };
    const d = m.data || {};
    switch (m.type) {
      case "position_update": this._position(d, meta); break;
      case "order_update": this._order(d, meta); break;
      case "account_update": this._account(d, meta); break;
      case "trade_executed": this._trade(d, meta); break;
      case "batch": this._unpack(d, meta); break;
      case "snapshot": {
        const p = this.portfolio;
        if ("positions" in d) p.positions = new Map();
        if ("orders" in d) p.orders = new Map();
        if ("account" in d) p.account = null;
        if ("trades" in d) p.trades = [];
        this._emit("snapshot", d, meta);
        this._unpack(d, meta);
        break;
      }
      default: return;
    }
    // The resume point is the highest seq applied: a poll's snapshot from another node, or a late
    // message, must never move it back (the server would replay what we already have).
    if (typeof m.seq === "number" && (this.lastSeq === null || m.seq > this.lastSeq)) this.lastSeq = m.seq;
    this._emit("applied", meta);
  }

  _unpack(d, meta) {
    for (const p of d.positions || []) this._position(p, meta);
    for (const o of d.orders || []) this._order(o, meta);
    if (d.account) this._account(d.account, meta);
    for (const t of d.trades || []) this._trade(t, meta);
  }

  _position(p, meta) {
    const removed = Number(p.quantity) === 0;
    if (removed) this.portfolio.positions.delete(p.symbol);
    else this.portfolio.positions.set(p.symbol, p);
    this._emit("position", p, { ...meta, removed });
  }

  _order(o, meta) {
    this.portfolio.orders.set(o.orderId, o);
    this._emit("order", o, meta);
  }

  _account(a, meta) {
    this.portfolio.account = a;
    this._emit("account", a, meta);
  }

  _trade(t, meta) {
    const trades = this.portfolio.trades;
    trades.push(t);
    if (trades.length > this.options.maxTrades) trades.splice(0, trades.length - this.options.maxTrades);
    this._emit("trade", t, meta);
  }

  // ---- status and staleness ---------------------------------------------------------------------

  _touch() {
    this.lastMessageAt = this._now();
    this._checkStaleness();
  }

  _checkStaleness() {
    const age = this.lastMessageAt === null ? Infinity : this._now() - this.lastMessageAt;
    const level = age < this.options.liveMs ? "live" : age < this.options.delayedMs ? "delayed" : "stale";
    if (level !== this.staleness) {
      this.staleness = level;
      this._emit("staleness", level, age);
    }
  }

  _setStatus(status, detail) {
    const changed = status !== this.status;
    this.status = status;
    this.statusDetail = detail;
    if (changed || status === "reconnecting" || detail.pollFailed) this._emit("status", status, detail);
  }

  _clearTimer(key) {
    const id = this._timers[key];
    if (id === undefined) return;
    clearTimeout(id);
    clearInterval(id);
    delete this._timers[key];
  }

  _emit(name, ...args) {
    for (const fn of this._handlers.get(name)) {
      try {
        fn(...args);
      } catch (err) {
        console.error(`portfolio-stream: ${name} callback failed`, err);
      }
    }
  }
}
