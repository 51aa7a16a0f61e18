// The portfolio-ws dashboard: login, then live positions, orders, account, trades and an intraday
// equity chart, fed by portfolio-stream.js. Plain DOM; every value is written with textContent.
// Money, prices and quantities are shown exactly as the server sent them (decimal strings).

import { PortfolioStream, connectionState } from "./portfolio-stream.js";

const $ = (id) => document.getElementById(id);
const FLASH_MS = 900;
const MAX_TRADES = 100;
const MAX_ORDERS = 200;
const MAX_POINTS = 2000;
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
let equity = { key: null, day: null, points: [] };

// ---- helpers --------------------------------------------------------------------------------

function sign(value) {
  if (value === null || value === undefined || value === "") return "flat";
  if (String(value).startsWith("-")) return "loss";
  return /^[0.]+$/.test(String(value)) ? "flat" : "gain";
}

function show(value) {
  return value === null || value === undefined ? "—" : String(value);
}

function timeOf(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleTimeString([], { hour12: false });
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

function positionRow(symbol) {
  const body = $("positions").tBodies[0];
  let row = body.querySelector(`tr[data-symbol="${CSS.escape(symbol)}"]`);
  if (row) return { row, created: false };
  row = el("tr");
  row.dataset.symbol = symbol;
  for (const field of POSITION_FIELDS) {
    const td = el("td", field === "symbol" || field === "side" ? "" : "num");
    td.dataset.field = field;
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
    const before = row.querySelector('[data-field="currentPrice"]').textContent;
    const changed = POSITION_FIELDS.some((f) => row.querySelector(`[data-field="${f}"]`).textContent !== show(p[f]));
    for (const field of POSITION_FIELDS) setCell(row, field, show(p[field]));
    setCell(row, "unrealizedPnl", show(p.unrealizedPnl), sign(p.unrealizedPnl));
    setCell(row, "unrealizedPnlPercent", show(p.unrealizedPnlPercent), sign(p.unrealizedPnlPercent));
    row.dataset.side = p.side;
    if (changed && !created && meta.source !== "poll") flash(row, direction(before, p.currentPrice));
  }
  const n = body.rows.length;
  $("positions-count").textContent = n ? `(${n})` : "";
  $("positions-empty").hidden = n > 0;
}

// ---- orders ---------------------------------------------------------------------------------

const ORDER_FIELDS = ["submittedAt", "symbol", "side", "type", "qty", "filledQty", "filledAvgPrice", "limitStop",
                      "status"];
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
      if (field === "status") td.append(el("span", "badge"));
      row.append(td);
    }
  }
  const prevStatus = row.dataset.status;
  setCell(row, "submittedAt", timeOf(o.submittedAt));
  row.querySelector('[data-field="submittedAt"]').title = o.submittedAt || "";
  for (const field of ["symbol", "side", "type", "qty", "filledQty", "filledAvgPrice"]) setCell(row, field, show(o[field]));
  const limitStop = [o.limitPrice, o.stopPrice].filter((v) => v !== null && v !== undefined).join(" / ");
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
    const text = show(value);
    if (node.textContent !== text) {
      const dir = direction(node.textContent, text);
      node.textContent = text;
      if (meta.source === "live" && dir) flash(node, dir);
    }
  }
  $("acct-day-pnl").dataset.sign = sign(a.dayPnl);
  $("acct-day-pnl-pct").textContent = a.dayPnlPercent === undefined ? "" : `${a.dayPnlPercent}%`;
  $("acct-day-pnl-pct").dataset.sign = sign(a.dayPnlPercent);
  addEquityPoint(a);
}

function loadEquity() {
  equity = { key: `portfolio-ws:equity:${user.userId}`, day: null, points: [] };
  try {
    const saved = JSON.parse(localStorage.getItem(equity.key) || "null");
    if (saved && Array.isArray(saved.points)) Object.assign(equity, saved, { key: equity.key });
  } catch (_) { /* private mode or bad data: start empty */ }
}

function saveEquity() {
  try {
    localStorage.setItem(equity.key, JSON.stringify({ day: equity.day, points: equity.points }));
  } catch (_) { /* quota or private mode */ }
}

function addEquityPoint(a) {
  const t = Date.parse(a.timestamp) || Date.now();
  const v = Number(a.equity);
  if (!Number.isFinite(v)) return;
  const day = newYorkDay(t);
  if (day !== equity.day) {
    if (equity.day && day < equity.day) return;   // an older day's figure: not today's chart
    equity.day = day;
    equity.points = [];
  }
  const points = equity.points;
  const last = points[points.length - 1];
  if (last && t < last.t) return;                 // out of order
  if (last && t === last.t) {
    last.v = v;
    last.label = a.equity;
  } else {
    points.push({ t, v, label: a.equity });
    if (points.length > MAX_POINTS) points.splice(0, points.length - MAX_POINTS);
  }
  saveEquity();
  drawChart();
}

const SVG = "http://www.w3.org/2000/svg";

function drawChart() {
  const svg = $("equity-chart");
  const points = equity.points;
  const W = 600, H = 160, PAD = 8;
  svg.replaceChildren();
  svg.dataset.points = String(points.length);
  if (!points.length) {
    $("chart-start").textContent = $("chart-end").textContent = $("chart-range").textContent = "";
    return;
  }
  const t0 = points[0].t, t1 = points[points.length - 1].t;
  let lo = Math.min(...points.map((p) => p.v)), hi = Math.max(...points.map((p) => p.v));
  if (hi === lo) { hi += 1; lo -= 1; }
  const x = (t) => (t1 === t0 ? W : ((t - t0) / (t1 - t0)) * W);
  const y = (v) => PAD + (1 - (v - lo) / (hi - lo)) * (H - 2 * PAD);
  const coords = points.map((p) => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`);
  if (points.length === 1) coords.unshift(`0,${y(points[0].v).toFixed(1)}`);
  const first = points[0].v, lastPoint = points[points.length - 1];
  const trend = lastPoint.v >= first ? "gain" : "loss";
  const area = document.createElementNS(SVG, "polygon");
  area.setAttribute("points", `${coords[0].split(",")[0]},${H} ${coords.join(" ")} ${W},${H}`);
  area.setAttribute("class", `area ${trend}`);
  const line = document.createElementNS(SVG, "polyline");
  line.setAttribute("points", coords.join(" "));
  line.setAttribute("class", `line ${trend}`);
  line.setAttribute("vector-effect", "non-scaling-stroke");
  const title = document.createElementNS(SVG, "title");
  title.textContent = `Equity ${lastPoint.label} at ${timeOf(new Date(lastPoint.t).toISOString())}`;
  svg.append(title, area, line);
  $("chart-start").textContent = timeOf(new Date(t0).toISOString());
  $("chart-end").textContent = timeOf(new Date(t1).toISOString());
  const low = points.reduce((m, p) => (p.v < m.v ? p : m)).label;
  const high = points.reduce((m, p) => (p.v > m.v ? p : m)).label;
  $("chart-range").textContent = `low ${low} · high ${high}`;
}

// ---- trades ---------------------------------------------------------------------------------

function onTrade(t, meta) {
  const list = $("trades");
  if (list.querySelector(`li[data-trade-id="${CSS.escape(t.tradeId)}"]`)) return;
  const item = el("li");
  item.dataset.tradeId = t.tradeId;
  item.append(el("time", "muted", timeOf(t.executedAt)), el("span", `side ${t.side}`, t.side.toUpperCase()),
              el("span", "what", `${t.quantity} ${t.symbol} @ ${t.price}`));
  const pnl = el("span", "pnl num", t.pnl === null || t.pnl === undefined ? "" : t.pnl);
  pnl.dataset.sign = sign(t.pnl);
  item.append(pnl);
  list.prepend(item);   // newest first (snapshot trades come oldest first)
  while (list.children.length > MAX_TRADES) list.lastElementChild.remove();
  if (meta.source === "live") flash(item, null);
  $("trades-empty").hidden = true;
}

// ---- snapshot: replace what it holds ------------------------------------------------------------

function onSnapshot(data) {
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

function tickLastUpdate() {
  if (!stream || stream.lastMessageAt === null) return;
  const node = $("last-update");
  node.dateTime = new Date(stream.lastMessageAt).toISOString();
  node.textContent = new Date(stream.lastMessageAt).toLocaleTimeString([], { hour12: false });
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
  equity = { key: null, day: null, points: [] };
  drawChart();
}

function startDashboard(me) {
  user = me;
  $("username").textContent = me.username;
  $("user-box").hidden = false;
  $("login-view").hidden = true;
  $("dashboard").hidden = false;
  clearDashboard();
  loadEquity();
  drawChart();
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
  setInterval(tickLastUpdate, 1000);
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
