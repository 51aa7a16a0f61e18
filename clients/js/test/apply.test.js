// Applying messages: events, batches (unpacked, one "applied" each), snapshots (replace what they hold).
import { test, beforeEach, afterEach, mock } from "node:test";
import assert from "node:assert/strict";
import { PortfolioStream } from "../src/portfolio-stream.js";
import { FakeSocket, msg, options } from "./fakes.js";

beforeEach(() => {
  FakeSocket.reset();
  mock.timers.enable({ apis: ["setTimeout", "setInterval", "Date"] });
});
afterEach(() => mock.timers.reset());

function started(extra) {
  const stream = new PortfolioStream(options(extra)).start();
  FakeSocket.last.accept();
  return stream;
}

test("subscribe goes out on open with every channel, resumeFrom only once something was applied", () => {
  started();
  assert.deepEqual(FakeSocket.last.sent, [{ type: "subscribe", channels: ["positions", "orders", "account", "trades"] }]);
});

test("a batch is unpacked into the per-item callbacks and applied once", () => {
  const seen = [];
  const applied = [];
  const stream = started({ onPosition: (p, m) => seen.push(["position", p.symbol, m.removed]),
                           onOrder: (o) => seen.push(["order", o.orderId]),
                           onAccount: (a) => seen.push(["account", a.equity]),
                           onTrade: (t) => seen.push(["trade", t.tradeId]),
                           onApplied: (m) => applied.push([m.type, m.seq, m.source]) });
  FakeSocket.last.message(msg.position(1, "SNDL"));
  FakeSocket.last.message({ type: "batch", timestamp: "2026-01-05T15:00:02.000Z", userId: "u1", seq: 6, data: {
    positions: [msg.position(0, "AAPL").data, msg.position(0, "SNDL", "0").data],
    orders: [msg.order(0, "order-1", "filled").data],
    account: msg.account(0, "1234.50").data,
    trades: [msg.trade(0, "trade-1").data, msg.trade(0, "trade-2").data],
  } });
  assert.deepEqual(seen, [["position", "SNDL", false], ["position", "AAPL", false], ["position", "SNDL", true],
                          ["order", "order-1"], ["account", "1234.50"], ["trade", "trade-1"], ["trade", "trade-2"]]);
  assert.deepEqual(applied, [["position_update", 1, "live"], ["batch", 6, "live"]]);
  assert.deepEqual([...stream.portfolio.positions.keys()], ["AAPL"]);            // SNDL closed: gone
  assert.equal(stream.portfolio.orders.get("order-1").status, "filled");
  assert.equal(stream.portfolio.account.equity, "1234.50");
  assert.deepEqual(stream.portfolio.trades.map((t) => t.tradeId), ["trade-1", "trade-2"]);
  assert.equal(stream.lastSeq, 6);
});

test("a snapshot replaces the channels it holds and leaves the others", () => {
  const stream = started();
  FakeSocket.last.message(msg.position(1, "OLD"));
  FakeSocket.last.message(msg.order(2, "order-1"));
  FakeSocket.last.message({ type: "snapshot", timestamp: "2026-01-05T15:00:02.000Z", userId: "u1", seq: 9,
                            data: { positions: [msg.position(0, "NEW").data] } });
  assert.deepEqual([...stream.portfolio.positions.keys()], ["NEW"]);
  assert.deepEqual([...stream.portfolio.orders.keys()], ["order-1"]);
  assert.equal(stream.lastSeq, 9);
});

test("trades are capped at maxTrades, oldest dropped", () => {
  const stream = started({ maxTrades: 3 });
  for (let i = 1; i <= 5; i++) FakeSocket.last.message(msg.trade(i, `trade-${i}`));
  assert.deepEqual(stream.portfolio.trades.map((t) => t.tradeId), ["trade-3", "trade-4", "trade-5"]);
});

test("after a reconnect it resumes from the highest seq and RESUMED can raise it", () => {
  const stream = started();
  FakeSocket.last.message(msg.account(12));
  FakeSocket.last.serverClose(1001, "Server shutting down");
  mock.timers.tick(1000);
  FakeSocket.last.accept();
  assert.equal(FakeSocket.last.sent[0].resumeFrom, 12);
  FakeSocket.last.message({ type: "info", timestamp: "2026-01-05T15:00:02.000Z", userId: "u1",
                            data: { code: "RESUMED", message: "", details: { recovered: true, from: 12, to: 15 } } });
  assert.equal(stream.lastSeq, 15);
});

test("a message that isn't JSON is ignored and nothing breaks", () => {
  const stream = started();
  FakeSocket.last.onmessage({ data: "{not json" });
  FakeSocket.last.message(msg.position(3, "AAPL"));
  assert.equal(stream.portfolio.positions.size, 1);
});
