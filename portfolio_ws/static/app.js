// The portfolio-ws dashboard: login, then live positions, orders, account, trades and an intraday
// equity chart, fed by portfolio-stream.js. Plain DOM; every value is written with textContent.
// Money, prices and quantities are the server's decimal strings, only grouped by thousands (never
// through a float). Every time on the page is the market's: New York time, marked ET once in the
// header, taken from the data itself (so a simulated market's clock, not this computer's).

import { PortfolioStream, connectionState } from "./portfolio-stream.js";

const $ = (id) => document.getElementById(id);
const FLASH_MS = 900;
const MAX_TRADES = 100;
const MAX_ORDERS = 200;
const MAX_POINTS = 2000;
const MARKET_ZONE = "America/New_York";
const CLOCK = new Intl.DateTimeFormat("en-GB", { timeZone: MARKET_ZONE, hour: "2-digit", minute: "2-digit",
                                                 second: "2-digit", hourCycle: "h23" });
const HOUR_MINUTE = new Intl.DateTimeFormat("en-GB", { timeZone: MARKET_ZONE, hour: "2-digit", minute: "2-digit",
                                                       hourCycle: "h23" });
const reducedMotion = window.matchMedia("(prefers-reduced-motion: reduce)");

// One indicator, one word: connectionState() of the stream's status and staleness.
const STATE_LABELS = {
  live: "live", delayed: "delayed", stale: "stale", connecting: "connecting", reconnecting: "reconnecting",
  polling: "polling", offline: "offline",
};
const WHY_LABELS = {
  disabled: "realtime streaming is off",
  limit: "too many open tabs",
  unreachable: "stream unreachable",
  auth: "logged out",
  refused: "connection refused",
  stopped: "",
};

let stream = null;
let user = null;
// Today's equity: the server's points (GET /api/portfolio/equity) plus live account updates.
let equity = { open: null, close: null, day: null, points: [] };
let marketTime = null;   // ms: the newest time carried by the data (account, orders, trades)

// ---- helpers --------------------------------------------------------------------------------

function sign(value) {
  if (value === null || value === undefined || value === "") return "flat";
  if (String(value).startsWith("-")) return "loss";
  return /^[0.]+$/.test(String(value)) ? "flat" : "gain";
}

function show(value) {
  return value === null || value === undefined ? "—" : String(value);
}

/** A decimal string with thousands separators: "-319684.57" -> "-319,684.57". Exact: text only. */
export function grouped(value) {
  if (value === null || value === undefined || value === "") return "—";
  const m = /^([-+]?)(\d+)(\.\d+)?$/.exec(String(value));
  if (!m) return String(value);
  return m[1] + m[2].replace(/\B(?=(\d{3})+(?!\d))/g, ",") + (m[3] || "");
}

/** HH:MM:SS on the market's clock (New York) for an ISO time or ms. */
function timeOf(when) {
  if (when === null || when === undefined || when === "") return "—";
  const d = new Date(when);
  return Number.isNaN(d.getTime()) ? String(when) : CLOCK.format(d);
}

function seen(iso) {
  const t = Date.parse(iso);
  if (Number.isFinite(t) && (marketTime === null || t > marketTime)) marketTime = t;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function flash(node, direction) {
  node.classList.remove("flash-up", "flash-down", "flash");
  void node.offsetWidth; // restart the animation
  node.classList.add(direction === "up" ? "flash-up" : direction === "down" ? "flash-down" : "flash");
  node.dataset.flash = direction || "change";
  clearTimeout(node._flashTimer);
  node._flashTimer = setTimeout(() => {
    node.classList.remove("flash-up", "flash-down", "flash");
    delete node.dataset.flash;
  }, FLASH_MS);
}

function direction(before, after) {
  const a = Number(before), b = Number(after);
  if (!Number.isFinite(a) || !Number.isFinite(b) || a === b) return null;
  return b > a ? "up" : "down";
}

function setCell(row, field, text, className) {
  const cell = row.querySelector(`[data-field="${field}"]`);
  if (cell.textContent !== text) cell.textContent = text;
  if (className !== undefined) cell.dataset.sign = className;
}

function newYorkDay(ms) {
  return new Intl.DateTimeFormat("en-CA", { timeZone: "America/New_York" }).format(new Date(ms));
}

// ---- positions ------------------------------------------------------------------------------

const POSITION_FIELDS = ["symbol", "side", "quantity", "entryPrice", "currentPrice", "marketValue",
                         "unrealizedPnl", "unrealizedPnlPercent"];
const POSITION_LABELS = { symbol: "", side: "", quantity: "qty", entryPrice: "entry", currentPrice: "price",
                          marketValue: "value", unrealizedPnl: "P&L", unrealizedPnlPercent: "" };
const AS_TEXT = new Set(["symbol", "side", "unrealizedPnlPercent"]);
const positionText = (p, field) => (AS_TEXT.has(field) ? show(p[field]) : grouped(p[field]))
  + (field === "unrealizedPnlPercent" && p[field] !== undefined && p[field] !== null ? "%" : "");

function positionRow(symbol) {
  const body = $("positions").tBodies[0];
  let row = body.querySelector(`tr[data-symbol="${CSS.escape(symbol)}"]`);
  if (row) return { row, created: false };
  row = el("tr");
  row.dataset.symbol = symbol;
  for (const field of POSITION_FIELDS) {
    const td = el("td", field === "symbol" || field === "side" ? "" : "num");
    td.dataset.field = field;
    td.dataset.label = POSITION_LABELS[field];   // the phone layout's caption
    row.append(td);
  }
  const after = [...body.rows].find((r) => r.dataset.symbol > symbol);
  body.insertBefore(row, after || null);
  return { row, created: true };
}

function onPosition(p, meta) {
  const body = $("positions").tBodies[0];
  if (meta.removed) {
    body.querySelector(`tr[data-symbol="${CSS.escape(p.symbol)}"]`)?.remove();
  } else {
    const { row, created } = positionRow(p.symbol);
    const before = row.dataset.price;
    const changed = POSITION_FIELDS.some((f) => row.querySelector(`[data-field="${f}"]`).textContent !== positionText(p, f));
    for (const field of POSITION_FIELDS) setCell(row, field, positionText(p, field));
    setCell(row, "unrealizedPnl", positionText(p, "unrealizedPnl"), sign(p.unrealizedPnl));
    setCell(row, "unrealizedPnlPercent", positionText(p, "unrealizedPnlPercent"), sign(p.unrealizedPnlPercent));
    row.dataset.side = p.side;
    row.dataset.price = p.currentPrice;
    if (changed && !created && meta.source !== "poll") flash(row, direction(before, p.currentPrice));
  }
  const n = body.rows.length;
  $("positions-count").textContent = n ? `(${n})` : "";
  $("positions-empty").hidden = n > 0;
}

// ---- orders ---------------------------------------------------------------------------------

const ORDER_FIELDS = ["submittedAt", "symbol", "side", "type", "qty", "filledQty", "filledAvgPrice", "limitStop",
                      "status"];
const ORDER_LABELS = { submittedAt: "", symbol: "", side: "", type: "", qty: "qty", filledQty: "filled",
                       filledAvgPrice: "avg", limitStop: "limit/stop", status: "" };
const OPEN_STATUSES = new Set(["pending_new", "new", "accepted", "partially_filled"]);

function onOrder(o, meta) {
  const body = $("orders").tBodies[0];
  let row = body.querySelector(`tr[data-order-id="${CSS.escape(o.orderId)}"]`);
  const created = !row;
  if (created) {
    row = el("tr");
    row.dataset.orderId = o.orderId;
    for (const field of ORDER_FIELDS) {
      const td = el("td", ["qty", "filledQty", "filledAvgPrice", "limitStop"].includes(field) ? "num" : "");
      td.dataset.field = field;
      td.dataset.label = ORDER_LABELS[field];
      if (field === "status") td.append(el("span", "badge"));
      row.append(td);
    }
  }
  const prevStatus = row.dataset.status;
  setCell(row, "submittedAt", timeOf(o.submittedAt));
  row.querySelector('[data-field="submittedAt"]').title = o.submittedAt || "";
  for (const field of ["symbol", "side", "type"]) setCell(row, field, show(o[field]));
  for (const field of ["qty", "filledQty", "filledAvgPrice"]) setCell(row, field, grouped(o[field]));
  seen(o.filledAt || o.submittedAt);
  const limitStop = [o.limitPrice, o.stopPrice].filter((v) => v !== null && v !== undefined).map(grouped).join(" / ");
  setCell(row, "limitStop", limitStop || "—");
  const badge = row.querySelector(".badge");
  badge.textContent = o.status.replace(/_/g, " ");
  badge.dataset.status = o.status;
  row.dataset.status = o.status;
  row.dataset.submittedAt = o.submittedAt || "";
  row.classList.toggle("closed", !OPEN_STATUSES.has(o.status));
  if (created) {
    // Newest first: by submittedAt, then orderId (descending).
    const key = (r) => `${r.dataset.submittedAt}\u0000${r.dataset.orderId}`;
    const mine = key(row);
    const after = [...body.rows].find((r) => key(r) < mine);
    body.insertBefore(row, after || null);
    while (body.rows.length > MAX_ORDERS) body.lastElementChild.remove();
  } else if (prevStatus !== o.status && meta.source !== "poll") {
    flash(row, null);
  }
  $("orders-empty").hidden = body.rows.length > 0;
}

// ---- account and equity chart -------------------------------------------------------------------

function onAccount(a, meta) {
  const fields = [["acct-equity", a.equity], ["acct-cash", a.cash], ["acct-buying-power", a.buyingPower],
                  ["acct-day-pnl", a.dayPnl]];
  for (const [id, value] of fields) {
    const node = $(id);
    const text = grouped(value);
    if (node.textContent !== text) {
      const dir = direction(node.dataset.raw, value);
      node.textContent = text;
      node.dataset.raw = value ?? "";
      if (meta.source === "live" && dir) flash(node, dir);
    }
  }
  seen(a.timestamp);
  $("acct-day-pnl").dataset.sign = sign(a.dayPnl);
  $("acct-day-pnl-pct").textContent = a.dayPnlPercent === undefined ? "" : `${a.dayPnlPercent}%`;
  $("acct-day-pnl-pct").dataset.sign = sign(a.dayPnlPercent);
  addEquityPoint(a);
}

/** Today's points from the server (kept there since the first account update of the day). */
async function loadEquity() {
  const who = user;
  let body = null;
  try {
    const response = await fetch("/api/portfolio/equity", { credentials: "same-origin", cache: "no-store" });
    if (response.ok) body = await response.json();
  } catch (_) { /* offline: live points only */ }
  if (!body || user !== who) return;
  const live = equity.points;
  equity.open = Date.parse(body.sessionOpen) || null;
  equity.close = Date.parse(body.sessionClose) || null;
  equity.points = body.points.map((p) => ({ t: Date.parse(p.t), v: Number(p.equity), label: p.equity }));
  equity.day = equity.points.length ? newYorkDay(equity.points[0].t) : equity.day;
  const last = equity.points[equity.points.length - 1];
  for (const p of live) if (!last || p.t > last.t) addPoint(p);   // arrived while we asked
  drawChart();
}

function addPoint(point) {
  const day = newYorkDay(point.t);
  if (day !== equity.day) {
    if (equity.day && day < equity.day) return;   // an older day's figure: not today's chart
    equity = { open: null, close: null, day, points: [] };
  }
  const points = equity.points;
  const last = points[points.length - 1];
  if (last && point.t < last.t) return;           // out of order
  if (last && Math.floor(point.t / 60000) === Math.floor(last.t / 60000)) {
    last.v = point.v;                             // a point a minute, as the server keeps them
    last.label = point.label;
  } else {
    points.push(point);
    if (points.length > MAX_POINTS) points.splice(0, points.length - MAX_POINTS);
  }
}

function addEquityPoint(a) {
  const t = Date.parse(a.timestamp);
  const v = Number(a.equity);
  if (!Number.isFinite(t) || !Number.isFinite(v)) return;
  addPoint({ t, v, label: a.equity });
  drawChart();
}

const SVG = "http://www.w3.org/2000/svg";

function drawChart() {
  const svg = $("equity-chart");
  const points = equity.points;
  const W = 600, H = 160, PAD = 8;
  svg.replaceChildren();
  svg.dataset.points = String(points.length);
  delete svg.dataset.first;
  if (!points.length) {
    $("chart-start").textContent = $("chart-end").textContent = $("chart-range").textContent = "";
    return;
  }
  // The x axis is the session, open to close; before the open or with no session known, the points.
  const last = points[points.length - 1];
  const t0 = Math.min(equity.open ?? points[0].t, points[0].t);
  const t1 = Math.max(equity.close ?? last.t, last.t, t0 + 60000);
  let lo = Math.min(...points.map((p) => p.v)), hi = Math.max(...points.map((p) => p.v));
  if (hi === lo) { hi += 1; lo -= 1; }
  const x = (t) => ((t - t0) / (t1 - t0)) * W;
  const y = (v) => PAD + (1 - (v - lo) / (hi - lo)) * (H - 2 * PAD);
  const coords = points.map((p) => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`);
  const trend = last.v >= points[0].v ? "gain" : "loss";
  const area = document.createElementNS(SVG, "polygon");
  area.setAttribute("points", `${coords[0].split(",")[0]},${H} ${coords.join(" ")} ${x(last.t).toFixed(1)},${H}`);
  area.setAttribute("class", `area ${trend}`);
  const line = document.createElementNS(SVG, "polyline");
  line.setAttribute("points", coords.join(" "));
  line.setAttribute("class", `line ${trend}`);
  line.setAttribute("vector-effect", "non-scaling-stroke");
  const title = document.createElementNS(SVG, "title");
  title.textContent = `Equity ${grouped(last.label)} at ${timeOf(last.t)} ET`;
  svg.append(title, area, line);
  svg.dataset.first = new Date(points[0].t).toISOString();
  svg.dataset.open = equity.open === null ? "" : new Date(equity.open).toISOString();
  $("chart-start").textContent = HOUR_MINUTE.format(new Date(t0));
  $("chart-end").textContent = HOUR_MINUTE.format(new Date(t1));
  const low = points.reduce((m, p) => (p.v < m.v ? p : m)).label;
  const high = points.reduce((m, p) => (p.v > m.v ? p : m)).label;
  $("chart-range").textContent = `low ${grouped(low)} · high ${grouped(high)}`;
}

// ---- trades ---------------------------------------------------------------------------------

function onTrade(t, meta) {
  const list = $("trades");
  if (list.querySelector(`li[data-trade-id="${CSS.escape(t.tradeId)}"]`)) return;
  const item = el("li");
  item.dataset.tradeId = t.tradeId;
  item.append(el("time", "muted", timeOf(t.executedAt)), el("span", `side ${t.side}`, t.side.toUpperCase()),
              el("span", "what", `${grouped(t.quantity)} ${t.symbol} @ ${grouped(t.price)}`));
  seen(t.executedAt);
  const pnl = el("span", "pnl num", t.pnl === null || t.pnl === undefined ? "" : grouped(t.pnl));
  pnl.dataset.sign = sign(t.pnl);
  item.append(pnl);
  list.prepend(item);   // newest first (snapshot trades come oldest first)
  while (list.children.length > MAX_TRADES) list.lastElementChild.remove();
  if (meta.source === "live") flash(item, null);
  $("trades-empty").hidden = true;
}

// ---- snapshot: replace what it holds ------------------------------------------------------------

function onSnapshot(data, meta) {
  if ("account" in data && (meta?.source === "snapshot" || !equity.points.length)) loadEquity();
  if ("positions" in data) {
    $("positions").tBodies[0].replaceChildren();
    $("positions-count").textContent = "";
    $("positions-empty").hidden = data.positions.length > 0;
  }
  if ("orders" in data) {
    $("orders").tBodies[0].replaceChildren();
    $("orders-empty").hidden = data.orders.length > 0;
  }
  if ("trades" in data) {
    $("trades").replaceChildren();
    $("trades-empty").hidden = data.trades.length > 0;
  }
}

// ---- connection indicator -----------------------------------------------------------------------

let statusDetail = {};

function onStatus(status, detail = {}) {
  statusDetail = detail;
  renderConnection();
  if (status === "offline" && detail.why === "auth") {
    endSession("Your session has ended. Log in again.");
  }
}

function onStaleness() {
  renderConnection();
}

/** The header's connection indicator, from the stream's state only (never two sources). */
function renderConnection() {
  const conn = $("conn");
  const status = stream ? stream.status : "offline";
  const state = stream ? connectionState(stream.status, stream.staleness) : "offline";
  const detail = stream ? statusDetail : {};
  conn.dataset.status = status;
  conn.dataset.state = state;
  $("conn-label").textContent = STATE_LABELS[state] || state;
  let text = WHY_LABELS[detail.why] ?? "";
  if (status === "offline" && detail.pollFailed) text = "server unreachable, retrying";
  if (status === "reconnecting" && detail.delayMs !== undefined) {
    text = `attempt ${detail.attempt + 1} in ${(detail.delayMs / 1000).toFixed(1)} s`;
  }
  if (state === "delayed" || state === "stale") text = "no update for a while";
  $("conn-detail").textContent = text;
  conn.title = detail.reason ? `${detail.code} ${detail.reason}` : "";
}

/** "updated 10:58:03 ET": the newest time the data carries, on the market's clock (the page
 * shows no other clock; how long ago that was is the indicator's live/delayed/stale). */
function tickLastUpdate() {
  if (marketTime === null) return;
  const node = $("last-update");
  const iso = new Date(marketTime).toISOString();
  if (node.dateTime === iso) return;
  node.dateTime = iso;
  node.textContent = `${timeOf(marketTime)} ET`;
}

// ---- session ------------------------------------------------------------------------------------

function clearDashboard() {
  $("positions").tBodies[0].replaceChildren();
  $("orders").tBodies[0].replaceChildren();
  $("trades").replaceChildren();
  for (const id of ["acct-equity", "acct-cash", "acct-buying-power", "acct-day-pnl"]) $(id).textContent = "—";
  $("acct-day-pnl-pct").textContent = "";
  $("positions-count").textContent = "";
  for (const id of ["positions-empty", "orders-empty", "trades-empty"]) $(id).hidden = false;
  equity = { open: null, close: null, day: null, points: [] };
  marketTime = null;
  $("last-update").textContent = "never";
  $("last-update").removeAttribute("datetime");
  drawChart();
}

function startDashboard(me) {
  user = me;
  $("username").textContent = me.username;
  $("user-box").hidden = false;
  $("login-view").hidden = true;
  $("dashboard").hidden = false;
  clearDashboard();
  stream = new PortfolioStream({
    ...(window.PORTFOLIO_STREAM_OPTIONS || {}),
    onPosition, onOrder, onAccount, onTrade, onSnapshot, onStatus, onStaleness,
    onApplied: tickLastUpdate, onMessage: tickLastUpdate,
  });
  window.dashboard = { stream };
  stream.start();
}

function endSession(message) {
  if (stream) {
    const s = stream;
    stream = null;
    s.stop();
  }
  user = null;
  $("user-box").hidden = true;
  $("dashboard").hidden = true;
  $("login-view").hidden = false;
  $("login-error").textContent = message || "";
  statusDetail = {};
  renderConnection();
  $("login-username").focus();
}

async function login(event) {
  event.preventDefault();
  const button = event.submitter || $("login-form").querySelector("button");
  button.disabled = true;
  $("login-error").textContent = "";
  try {
    const response = await fetch("/api/auth/login", {
      method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username: $("login-username").value, password: $("login-password").value }),
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      $("login-error").textContent = body.error?.message || `Login failed (${response.status})`;
      return;
    }
    $("login-password").value = "";
    startDashboard(body);
  } catch (err) {
    $("login-error").textContent = "Cannot reach the server";
  } finally {
    button.disabled = false;
  }
}

async function logout() {
  await fetch("/api/auth/logout", { method: "POST", credentials: "same-origin" }).catch(() => null);
  endSession("");
}

async function boot() {
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", logout);
  window.addEventListener("online", () => stream?.reconnectNow());
  const motion = () => document.documentElement.classList.toggle("reduced-motion", reducedMotion.matches);
  reducedMotion.addEventListener("change", motion);
  motion();
  let me = null;
  try {   // /api/auth/session answers 200 either way: no console error for "not logged in yet"
    const response = await fetch("/api/auth/session", { credentials: "same-origin", cache: "no-store" });
    const body = response.ok ? await response.json() : null;
    if (body?.loggedIn) me = body;
  } catch (_) { /* offline: show the login form */ }
  if (me) startDashboard(me);
  else endSession("");
}

boot();
