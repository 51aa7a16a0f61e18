// @ts-check
// react.js: usePortfolio, the React hook of portfolio-ws-client (entry point
// "portfolio-ws-client/react"; react is a peer dependency). It runs one PortfolioStream per mounted
// component: positions, orders, account, trades, connection status and staleness, with the
// stream's reconnect, resume and polling; the socket closes on unmount.
//
//   const { positions, orders, account, trades, status, staleness, state } = usePortfolio();
//   // Node / tests: usePortfolio({ url, sessionId, WebSocket })
//
// A new stream is made when url, sessionId or channels change; other options are read when it is made.

import { useEffect, useState } from "react";
import { PortfolioStream, connectionState } from "./portfolio-stream.js";

/** What the hook returns: plain arrays and objects, a new object on every change (one render a message). */
function view(stream) {
  const p = stream.portfolio;
  return {
    positions: [...p.positions.values()],
    orders: [...p.orders.values()],
    account: p.account,
    trades: [...p.trades],
    status: stream.status,
    staleness: stream.staleness,
    state: connectionState(stream.status, stream.staleness),
    statusDetail: stream.statusDetail || {},
    lastSeq: stream.lastSeq,
    lastMessageAt: stream.lastMessageAt,
    stream,
  };
}

const IDLE = Object.freeze({
  positions: [], orders: [], account: null, trades: [], status: "offline", staleness: "stale",
  state: "offline", statusDetail: {}, lastSeq: null, lastMessageAt: null, stream: null,
});

/**
 * @param {import("./portfolio-stream.js").Options} [options]
 */
export function usePortfolio(options = {}) {
  const [snapshot, setSnapshot] = useState(/** @type {any} */ (IDLE));
  const channels = (options.channels || []).join(",");
  useEffect(() => {
    const stream = new PortfolioStream(options);
    const update = () => setSnapshot(view(stream));
    // "applied" fires once per message after all its items (a batch is one render, not one per item).
    for (const name of /** @type {const} */ (["applied", "status", "staleness"])) stream.on(name, update);
    stream.start();
    update();
    return () => stream.stop();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [options.url, options.sessionId, channels]);
  return snapshot;
}
