// Test doubles for node --test: a scripted WebSocket, a fetch, a manual clock and timers, so the
// client's behaviour is checked deterministically (no sleeps, no network).

/** A WebSocket whose server side the test drives: open(), send(message), close(code, reason). */
export class FakeSocket {
  static instances = [];
  constructor(url, options) {
    this.url = url;
    this.options = options;
    this.sent = [];
    this.closed = null;
    FakeSocket.instances.push(this);
  }
  send(text) { this.sent.push(JSON.parse(text)); }
  close(code, reason) { this.closed = { code, reason }; }
  // ---- the server's side ----
  open() { this.onopen && this.onopen({}); }
  message(m) { this.onmessage && this.onmessage({ data: JSON.stringify(m) }); }
  serverClose(code, reason = "") { this.onclose && this.onclose({ code, reason }); }
  /** The connect handshake as the server does it: open, then info CONNECTED. */
  accept(connectionId = "conn-1") {
    this.open();
    this.message({ type: "info", timestamp: "2026-01-05T15:00:00.000Z", userId: "u1",
                   data: { code: "CONNECTED", message: "Connected", details: { connectionId } } });
  }
  static reset() { FakeSocket.instances = []; }
  static get last() { return FakeSocket.instances.at(-1); }
}

/** Message builders in the server's shapes (docs/protocol.md). */
export const msg = {
  position: (seq, symbol, quantity = "10") => ({
    type: "position_update", timestamp: "2026-01-05T15:00:01.000Z", userId: "u1", seq,
    data: { symbol, quantity, currentPrice: "10.00", entryPrice: "9.00", unrealizedPnl: "10.00",
            unrealizedPnlPercent: "11.11", marketValue: "100.00", side: "long", strategyId: null, openedAt: null },
  }),
  order: (seq, orderId, status = "new") => ({
    type: "order_update", timestamp: "2026-01-05T15:00:01.000Z", userId: "u1", seq,
    data: { orderId, brokerOrderId: null, symbol: "AAPL", side: "buy", type: "market", status, qty: "1",
            filledQty: "0", filledAvgPrice: null, limitPrice: null, stopPrice: null,
            submittedAt: "2026-01-05T15:00:00.000Z", filledAt: null },
  }),
  account: (seq, equity = "1000.00") => ({
    type: "account_update", timestamp: "2026-01-05T15:00:01.000Z", userId: "u1", seq,
    data: { equity, buyingPower: "2000.00", cash: "500.00", portfolioValue: equity, dayPnl: "0.00",
            dayPnlPercent: "0.00", timestamp: "2026-01-05T15:00:00.000Z" },
  }),
  trade: (seq, tradeId) => ({
    type: "trade_executed", timestamp: "2026-01-05T15:00:01.000Z", userId: "u1", seq,
    data: { tradeId, symbol: "AAPL", side: "buy", quantity: "1", price: "10.00", pnl: null,
            executedAt: "2026-01-05T15:00:00.000Z", strategyId: null },
  }),
  cause: (code, closeCode, message = "") => ({
    type: "error", timestamp: "2026-01-05T15:00:01.000Z", userId: "u1",
    data: { code, message, details: { closeCode } },
  }),
};

/** The options every test passes: fake socket, no real timers' surprises, fixed randomness. */
export function options(extra = {}) {
  return { url: "ws://127.0.0.1:5000/ws/portfolio", WebSocket: FakeSocket, random: () => 0.5,
           fetch: async () => { throw new Error("no fetch in this test"); }, ...extra };
}
