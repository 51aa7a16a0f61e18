// The polling fallback: GET /api/portfolio while the socket is unavailable, the socket retried
// meanwhile, back to live when it is admitted; a 401 ends it.
import { test, beforeEach, afterEach, mock } from "node:test";
import assert from "node:assert/strict";
import { PortfolioStream } from "../src/portfolio-stream.js";
import { FakeSocket, msg, options } from "./fakes.js";

beforeEach(() => {
  FakeSocket.reset();
  mock.timers.enable({ apis: ["setTimeout", "setInterval", "Date"] });
});
afterEach(() => mock.timers.reset());

const flush = () => new Promise((resolve) => setImmediate(resolve));

function restApi(status = 200) {
  const calls = [];
  let seq = 4;
  const fetch = async (url, init) => {
    calls.push({ url, init });
    seq += 1;
    const body = { type: "snapshot", timestamp: "2026-01-05T15:00:01.000Z", userId: "u1", seq,
                   data: { positions: [msg.position(0, "AAPL").data], orders: [], account: null, trades: [] } };
    return { ok: status === 200, status, json: async () => body };
  };
  return { fetch, calls, status: (s) => { status = s; } };
}

test("streaming disabled: polls at once and every 5 s, retries the socket, goes live when admitted", async () => {
  const api = restApi();
  const statuses = [];
  const stream = new PortfolioStream(options({ fetch: api.fetch, sessionId: "abc",
                                               onStatus: (s, d) => statuses.push([s, d.why ?? null]) })).start();
  FakeSocket.last.open();
  FakeSocket.last.message(msg.cause("STREAMING_DISABLED", 1013, "Realtime streaming disabled"));
  FakeSocket.last.serverClose(1013, "Realtime streaming disabled");
  await flush();
  assert.equal(api.calls.length, 1);
  assert.equal(api.calls[0].url, "http://127.0.0.1:5000/api/portfolio");   // beside the socket, outside a browser
  assert.equal(api.calls[0].init.headers.Cookie, "session=abc");
  assert.deepEqual([...stream.portfolio.positions.keys()], ["AAPL"]);
  assert.equal(stream.staleness, "live");
  mock.timers.tick(5000);
  await flush();
  assert.equal(api.calls.length, 2);
  // The socket retry (0.5-1 s for the first, random 0.5: 750 ms) happened meanwhile; it's admitted now.
  assert.equal(FakeSocket.instances.length, 2);
  FakeSocket.last.accept();
  assert.equal(stream.status, "connected");
  mock.timers.tick(20_000);
  await flush();
  assert.equal(api.calls.length, 2, "no polling once connected");
  assert.deepEqual(statuses.map(([s]) => s), ["connecting", "polling", "connected"]);
  assert.deepEqual(FakeSocket.last.sent[0].resumeFrom, 6);
  stream.stop();
});

test("after 10 failed connects in a row it polls (unreachable)", async () => {
  const api = restApi();
  const stream = new PortfolioStream(options({ fetch: api.fetch, random: () => 0 })).start();
  for (let i = 0; i < 10; i++) {
    FakeSocket.last.serverClose(1006, "");
    mock.timers.tick(0);
  }
  await flush();
  assert.equal(stream.status, "polling");
  assert.equal(stream.pollReason, "unreachable");
  assert.equal(api.calls.length, 1);
  stream.stop();
});

test("a 401 while polling ends the stream (log in again)", async () => {
  const api = restApi(401);
  const stream = new PortfolioStream(options({ fetch: api.fetch })).start();
  FakeSocket.last.open();
  FakeSocket.last.message(msg.cause("CONNECTION_LIMIT", 1008, "Maximum connections exceeded (5 per user)"));
  FakeSocket.last.serverClose(1008, "Maximum connections exceeded (5 per user)");
  await flush();
  assert.equal(stream.status, "offline");
  assert.equal(stream.statusDetail.why, "auth");
  mock.timers.tick(60_000);
  assert.equal(FakeSocket.instances.length, 1, "no socket retries after the 401");
});

test("with a url given, location is never read (Node, workers, other origins)", () => {
  Object.defineProperty(globalThis, "location", { configurable: true, get() { throw new Error("location read"); } });
  try {
    const stream = new PortfolioStream(options({ url: "wss://example.test/ws/portfolio" }));
    assert.equal(stream.options.portfolioUrl, "https://example.test/api/portfolio");
  } finally {
    delete globalThis.location;
  }
});

test("outside a browser a url is required, and a missing WebSocket is a clear error", () => {
  assert.throws(() => new PortfolioStream({ WebSocket: FakeSocket }), /`url` is required outside a browser/);
  if (typeof globalThis.WebSocket === "undefined") {   // Node 18-21: ws must be injected
    assert.throws(() => new PortfolioStream({ url: "ws://x/ws/portfolio" }), /no WebSocket here/);
  }
});
