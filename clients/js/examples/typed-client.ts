// A typed Node.js program on portfolio-ws-client: prints the live portfolio events of one user.
//   npm install portfolio-ws-client ws typescript @types/ws
//   PORTFOLIO_WS_URL=ws://127.0.0.1:5000/ws/portfolio SESSION_ID=<session cookie> node example.js
// (tests/process/clients_js/test_packaging.py type-checks it with tsc --noEmit and runs it against a real server.)
import WebSocket from "ws";
import { PortfolioStream, type Account, type Order, type Position, type Status, type Trade } from "portfolio-ws-client";
import { closePolicy } from "portfolio-ws-client/close-policy";
import type { ServerMessage } from "portfolio-ws-client/protocol";

const url = process.env.PORTFOLIO_WS_URL ?? "ws://127.0.0.1:5000/ws/portfolio";
const sessionId = process.env.SESSION_ID ?? "";
const wanted = Number(process.env.EVENTS ?? "1");   // stop after this many live position updates
let positions = 0;

const stream = new PortfolioStream({
  url,
  sessionId,
  WebSocket,                          // Node 18-21 have no global WebSocket: ws's, no cast needed
  onStatus: (status: Status, detail) => console.log(`status ${status}${detail.why ? ` (${detail.why})` : ""}`),
  onSnapshot: (data, meta) => console.log(`snapshot seq=${meta.seq} positions=${data.positions?.length ?? 0}`),
  onPosition: (p: Position, meta) => {
    console.log(`position ${p.symbol} ${p.side} ${p.quantity} @ ${p.currentPrice} P&L ${p.unrealizedPnl} seq=${meta.seq} ${meta.source}`);
    if (meta.source === "live" && ++positions >= wanted) stream.stop();
  },
  onOrder: (o: Order) => console.log(`order ${o.orderId} ${o.symbol} ${o.status}`),
  onAccount: (a: Account) => console.log(`account equity ${a.equity}`),
  onTrade: (t: Trade) => console.log(`trade ${t.tradeId} ${t.side} ${t.quantity} ${t.symbol} @ ${t.price}`),
  onClose: ({ code, cause }) => console.log(`closed ${code} ${cause ?? ""} -> ${closePolicy(code, cause).action}`),
});
stream.on("message", (m: ServerMessage) => {
  if (m.type === "info" && m.data.code === "CONNECTED") console.log(`connected ${m.data.details.connectionId}`);
});
stream.start();
