// The close-policy table as the client applies it: by close code and the cause named first, never
// by reason text; backoff with jitter; polling and the socket retries meanwhile.
import { test, beforeEach, afterEach, mock } from "node:test";
import assert from "node:assert/strict";
import { PortfolioStream, closePolicy, backoffDelay, socketRetryDelay, nextStep, DEFAULTS } from "../src/portfolio-stream.js";
import { FakeSocket, msg, options } from "./fakes.js";

beforeEach(() => {
  FakeSocket.reset();
  mock.timers.enable({ apis: ["setTimeout", "setInterval", "Date"] });
});
afterEach(() => mock.timers.reset());

test("the table: a cause decides only with its own close code; unknown causes fall back to the code", () => {
  assert.deepEqual(closePolicy(1008, "CONNECTION_LIMIT"), { action: "poll", delay: "poll_retry" });
  assert.deepEqual(closePolicy(1008), { action: "stop", delay: "none" });                 // an auth refusal
  assert.deepEqual(closePolicy(1008, "SESSION_EXPIRED"), { action: "stop", delay: "none" });
  assert.deepEqual(closePolicy(1013, "STREAMING_DISABLED"), { action: "poll", delay: "poll_retry" });
  assert.deepEqual(closePolicy(1013, "SLOW_CONSUMER"), { action: "reconnect", delay: "backoff_slow" });
  assert.deepEqual(closePolicy(1006, "SESSION_EXPIRED"), { action: "reconnect", delay: "backoff" });
  assert.deepEqual(closePolicy(1013, "NOT_YET_INVENTED"), { action: "reconnect", delay: "backoff_slow" });
  assert.deepEqual(closePolicy(1000), { action: "stop", delay: "none" });
  assert.deepEqual(closePolicy(4000), { action: "reconnect", delay: "backoff" });
  assert.deepEqual(closePolicy(1008, "toString"), { action: "stop", delay: "none" });     // no prototype lookups
});

test("backoff is full jitter, doubling from 1 s, capped at 30 s; 1013 adds 5 s", () => {
  const top = [0, 1, 2, 3, 4, 5, 6, 100].map((a) => backoffDelay(a, DEFAULTS, () => 1));
  assert.deepEqual(top, [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
  assert.equal(backoffDelay(3, DEFAULTS, () => 0), 0);
  assert.equal(backoffDelay(3, DEFAULTS, () => 0.25), 2000);
  const state = { failures: 1, polling: false, attempt: 2 };
  assert.deepEqual(nextStep(1013, "SERVER_CAPACITY", state, DEFAULTS, () => 0.5), { action: "reconnect", delayMs: 2000 + 5000 });
  assert.deepEqual(nextStep(1001, "SERVER_SHUTTING_DOWN", state, DEFAULTS, () => 0.5), { action: "reconnect", delayMs: 2000 });
  assert.deepEqual([0, 1, 2, 3, 9].map((n) => socketRetryDelay(n, DEFAULTS, () => 0)), [500, 1000, 2000, 2000, 2000]);
});

test("a server's 1000 ends the stream: no reconnect (it used to reconnect)", () => {
  const statuses = [];
  const stream = new PortfolioStream(options({ onStatus: (s, d) => statuses.push([s, d.why]) })).start();
  FakeSocket.last.accept();
  FakeSocket.last.serverClose(1000, "");
  mock.timers.tick(120_000);
  assert.equal(FakeSocket.instances.length, 1);
  assert.equal(stream.status, "offline");
  assert.deepEqual(statuses.at(-1), ["offline", "closed"]);
});

test("the reason text plays no part: the same 1008 reason polls or stops by the cause before it", () => {
  const limited = new PortfolioStream(options()).start();
  FakeSocket.last.open();
  FakeSocket.last.message(msg.cause("CONNECTION_LIMIT", 1008, "whatever the words"));
  FakeSocket.last.serverClose(1008, "Session expired");
  assert.equal(limited.status, "polling");
  assert.equal(limited.pollReason, "limit");
  limited.stop();

  const expired = new PortfolioStream(options()).start();
  FakeSocket.last.accept();
  FakeSocket.last.message(msg.cause("SESSION_EXPIRED", 1008, "Session expired"));
  FakeSocket.last.serverClose(1008, "Maximum connections exceeded (5 per user)");
  assert.equal(expired.status, "offline");
  assert.equal(expired.statusDetail.why, "auth");
});

test("reconnects back off with jitter, reset once CONNECTED; 1013 waits 5 s longer", () => {
  const delays = [];
  const stream = new PortfolioStream(options({ random: () => 1,
    onStatus: (s, d) => { if (s === "reconnecting") delays.push(d.delayMs); } })).start();
  FakeSocket.last.accept();
  for (let i = 0; i < 4; i++) {
    FakeSocket.last.serverClose(1006, "");
    mock.timers.tick(delays.at(-1));
  }
  assert.deepEqual(delays, [1000, 2000, 4000, 8000]);
  FakeSocket.last.accept();                               // admitted: the exponent starts again
  FakeSocket.last.message(msg.cause("SLOW_CONSUMER", 1013, "Slow consumer"));
  FakeSocket.last.serverClose(1013, "Slow consumer");
  assert.equal(delays.at(-1), 1000 + 5000);
  stream.stop();
});
