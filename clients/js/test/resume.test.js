// The resume point: the highest seq applied, whatever order messages and polls arrive in.
import { test, beforeEach, afterEach, mock } from "node:test";
import assert from "node:assert/strict";
import { PortfolioStream } from "../src/portfolio-stream.js";
import { FakeSocket, msg, options } from "./fakes.js";

beforeEach(() => {
  FakeSocket.reset();
  mock.timers.enable({ apis: ["setTimeout", "setInterval", "Date"] });
});
afterEach(() => mock.timers.reset());

test("a lower seq arriving after a higher one never moves the resume point back", () => {
  const stream = new PortfolioStream(options()).start();
  FakeSocket.last.accept();
  FakeSocket.last.message(msg.position(7, "AAPL"));
  FakeSocket.last.message(msg.order(5, "order-1"));   // e.g. a snapshot from a lagging node
  assert.equal(stream.lastSeq, 7);
  FakeSocket.last.serverClose(1001, "Server shutting down");
  mock.timers.tick(60_000);
  assert.equal(FakeSocket.instances.length, 2);
  FakeSocket.last.open();
  const resubscribe = FakeSocket.last.sent[0];
  assert.equal(resubscribe.resumeFrom, 7);
  stream.stop();
});

test("a poll's snapshot with an older seq does not move it back either", async () => {
  const snapshot = { type: "snapshot", timestamp: "2026-01-05T15:00:01.000Z", userId: "u1", seq: 3,
                     data: { positions: [], orders: [], account: null, trades: [] } };
  const fetch = async () => ({ ok: true, status: 200, json: async () => snapshot });
  const stream = new PortfolioStream(options({ fetch })).start();
  FakeSocket.last.accept();
  FakeSocket.last.message(msg.position(9, "AAPL"));
  FakeSocket.last.message(msg.cause("STREAMING_DISABLED", 1013, "Realtime streaming disabled"));
  FakeSocket.last.serverClose(1013, "Realtime streaming disabled");
  assert.equal(stream.status, "polling");
  await new Promise((resolve) => setImmediate(resolve));   // the first poll, started at once, lands
  assert.equal(stream.portfolio.positions.size, 0, "the poll's snapshot was applied");
  assert.equal(stream.lastSeq, 9);
  stream.stop();
});
