// react.d.ts: the React hook (entry point "portfolio-ws-client/react"; react is a peer dependency).

import type { Account, Order, Position, Trade } from "./protocol.js";
import type { ConnectionState, Options, PortfolioStream, Staleness, Status, StatusDetail } from "./portfolio-stream.js";

export interface PortfolioView {
  /** Open positions (a "quantity": "0" update removes one). */
  positions: Position[];
  orders: Order[];
  account: Account | null;
  /** Today's trades, oldest first. */
  trades: Trade[];
  status: Status;
  staleness: Staleness;
  /** The one word to show: staleness while connected, else the status. */
  state: ConnectionState;
  statusDetail: StatusDetail;
  /** The highest seq applied (the resume point). */
  lastSeq: number | null;
  lastMessageAt: number | null;
  /** The stream behind it (null before the first effect). */
  stream: PortfolioStream | null;
}

/** One stream per mounted component; a new one when url, sessionId or channels change; stopped on unmount. */
export declare function usePortfolio(options?: Options): PortfolioView;
