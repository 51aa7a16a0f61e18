// usePortfolio in React 18 with jsdom: state from the stream, one render a message, reconnect and
// resume as the client does, the socket closed on unmount.
import { test, before, after, beforeEach, afterEach, mock } from "node:test";
import assert from "node:assert/strict";
import { JSDOM } from "jsdom";
import { FakeSocket, msg, options } from "./fakes.js";

let React, createRoot, usePortfolio, dom;

before(async () => {
  dom = new JSDOM("<!doctype html><div id=root></div>", { url: "http://127.0.0.1:5000/" });
  globalThis.window = dom.window;
  globalThis.document = dom.window.document;
  globalThis.location = dom.window.location;          // the page: a url may be left out
  if (typeof globalThis.navigator === "undefined") globalThis.navigator = dom.window.navigator;  // Node < 21
  globalThis.IS_REACT_ACT_ENVIRONMENT = true;
  React = (await import("react")).default;
  ({ createRoot } = await import("react-dom/client"));
  ({ usePortfolio } = await import("../src/react.js"));
});
after(() => {
  dom.window.close();
  delete globalThis.window;
  delete globalThis.document;
  delete globalThis.location;
});
beforeEach(() => {
  FakeSocket.reset();
  mock.timers.enable({ apis: ["setTimeout", "setInterval", "Date"] });
});
afterEach(() => mock.timers.reset());

function mount(hookOptions) {
  const views = [];
  function Probe() {
    views.push(usePortfolio(hookOptions));
    return null;
  }
  const root = createRoot(document.getElementById("root"));
  React.act(() => root.render(React.createElement(Probe)));
  return { views, root, latest: () => views.at(-1) };
}

const act = (fn) => React.act(fn);

test("positions, orders, account, trades, status and staleness follow the stream", () => {
  const { latest, views, root } = mount(options());
  assert.equal(latest().status, "connecting");
  act(() => FakeSocket.last.accept());
  assert.equal(latest().status, "connected");
  assert.equal(latest().state, "live");
  act(() => FakeSocket.last.message(msg.position(1, "AAPL")));
  act(() => FakeSocket.last.message(msg.order(2, "order-1")));
  act(() => FakeSocket.last.message(msg.account(3, "99.00")));
  act(() => FakeSocket.last.message(msg.trade(4, "trade-1")));
  const v = latest();
  assert.deepEqual(v.positions.map((p) => p.symbol), ["AAPL"]);
  assert.deepEqual(v.orders.map((o) => o.orderId), ["order-1"]);
  assert.equal(v.account.equity, "99.00");
  assert.deepEqual(v.trades.map((t) => t.tradeId), ["trade-1"]);
  assert.equal(v.lastSeq, 4);

  const before = views.length;
  act(() => FakeSocket.last.message({ type: "batch", timestamp: "2026-01-05T15:00:02.000Z", userId: "u1", seq: 8,
    data: { positions: [msg.position(0, "AAPL", "0").data, msg.position(0, "MSFT").data], trades: [msg.trade(0, "trade-2").data] } }));
  assert.equal(views.length, before + 1, "one render for a whole batch");
  assert.deepEqual(latest().positions.map((p) => p.symbol), ["MSFT"]);

  act(() => mock.timers.tick(6000));
  assert.equal(latest().staleness, "delayed");
  assert.equal(latest().state, "delayed");
  act(() => root.unmount());
});

test("it reconnects and resumes from the highest seq, as the client does", () => {
  const { latest, root } = mount(options());
  act(() => FakeSocket.last.accept());
  act(() => FakeSocket.last.message(msg.position(7, "AAPL")));
  act(() => FakeSocket.last.message(msg.cause("SERVER_SHUTTING_DOWN", 1001, "Server shutting down")));
  act(() => FakeSocket.last.serverClose(1001, "Server shutting down"));
  assert.equal(latest().status, "reconnecting");
  act(() => mock.timers.tick(1000));
  act(() => FakeSocket.last.accept());
  assert.equal(FakeSocket.last.sent[0].resumeFrom, 7);
  assert.equal(latest().status, "connected");
  assert.deepEqual(latest().positions.map((p) => p.symbol), ["AAPL"]);
  act(() => root.unmount());
});

test("unmounting closes the socket with 1000 and nothing reconnects", () => {
  const { root } = mount(options());
  act(() => FakeSocket.last.accept());
  const socket = FakeSocket.last;
  act(() => root.unmount());
  assert.deepEqual(socket.closed, { code: 1000, reason: "Client closed" });
  mock.timers.tick(120_000);
  assert.equal(FakeSocket.instances.length, 1);
});

test("in a page with no url given it connects to the page's own host", () => {
  const { root } = mount({ WebSocket: FakeSocket, random: () => 0.5 });
  assert.equal(FakeSocket.last.url, "ws://127.0.0.1:5000/ws/portfolio");
  act(() => root.unmount());
});
