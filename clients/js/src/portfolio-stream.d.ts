// portfolio-stream.d.ts: the client API of portfolio-stream.js (the package's main entry point).

import type { Account, Channel, ErrorData, Order, Position, SnapshotData, Trade } from "./protocol.js";
import type { CloseCause } from "./close-policy.js";

export * from "./protocol.js";
export { CLOSE_CAUSES, CLOSE_CODES, backoffDelay, closePolicy, nextStep, socketRetryDelay } from "./close-policy.js";
export type { CloseAction, CloseCause, CloseDelay, ClosePolicy, CloseState } from "./close-policy.js";

export type Status = "connecting" | "connected" | "reconnecting" | "polling" | "offline";
export type Staleness = "live" | "delayed" | "stale";
/** The one word a page shows: the staleness while connected, else the status. */
export type ConnectionState = Staleness | Exclude<Status, "connected">;

export declare const CHANNELS: readonly Channel[];

/** A WebSocket constructor: the browser's, Node 22's global one, or `ws`'s (given a Cookie header). */
// (Event parameters are `any` so that the DOM's WebSocket and ws's both fit without a cast.)
export interface WebSocketLike {
  onopen: ((ev: any) => void) | null;
  onmessage: ((ev: any) => void) | null;
  onerror: ((ev: any) => void) | null;
  onclose: ((ev: any) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}
export type WebSocketConstructor = new (url: string, options?: any) => WebSocketLike;

export interface Options {
  /** ws(s)://host/ws/portfolio. Default in a browser page: this page's host. Required elsewhere. */
  url?: string | null;
  /** Default: /api/portfolio on the url's host. */
  portfolioUrl?: string | null;
  /** Outside a browser: the session cookie's value (sent on the socket and the polls). */
  sessionId?: string | null;
  channels?: readonly Channel[];
  baseDelayMs?: number;
  maxDelayMs?: number;
  slowDownDelayMs?: number;
  maxFailedAttempts?: number;
  pingIntervalMs?: number;
  pongTimeoutMs?: number;
  connectTimeoutMs?: number;
  liveMs?: number;
  delayedMs?: number;
  stalenessCheckMs?: number;
  pollIntervalMs?: number;
  socketRetryMs?: number;
  maxTrades?: number;
  /** Injected for Node 18-21 (`import WebSocket from "ws"`) and tests. */
  WebSocket?: WebSocketConstructor;
  fetch?: typeof globalThis.fetch;
  random?: () => number;
  now?: () => number;
  onPosition?: Handlers["position"];
  onOrder?: Handlers["order"];
  onAccount?: Handlers["account"];
  onTrade?: Handlers["trade"];
  onSnapshot?: Handlers["snapshot"];
  onMessage?: Handlers["message"];
  onApplied?: Handlers["applied"];
  onStatus?: Handlers["status"];
  onStaleness?: Handlers["staleness"];
  onInfo?: Handlers["info"];
  onResumed?: Handlers["resumed"];
  onError?: Handlers["error"];
  onClose?: Handlers["close"];
}

export declare const DEFAULTS: Readonly<Required<Omit<Options, "WebSocket" | "fetch" | "random" | "now" |
  `on${string}`>>>;

/** Where an item came from: a live message, a snapshot on (re)subscribe, or a poll of /api/portfolio. */
export interface ApplyMeta {
  seq: number | undefined;
  type: string;
  source: "live" | "snapshot" | "poll";
}

export interface StatusDetail {
  why?: "auth" | "refused" | "closed" | "stopped" | "disabled" | "limit" | "unreachable" | null;
  code?: number;
  reason?: string;
  cause?: CloseCause | string | null;
  attempt?: number;
  delayMs?: number;
  connectionId?: string;
  pollFailed?: boolean;
}

export interface Handlers {
  position: (position: Position, meta: ApplyMeta & { removed: boolean }) => void;
  order: (order: Order, meta: ApplyMeta) => void;
  account: (account: Account, meta: ApplyMeta) => void;
  trade: (trade: Trade, meta: ApplyMeta) => void;
  /** Before its items: replace (don't merge) the channels it holds. */
  snapshot: (data: SnapshotData, meta: ApplyMeta) => void;
  message: (message: import("./protocol.js").ServerMessage) => void;
  applied: (meta: ApplyMeta) => void;
  status: (status: Status, detail: StatusDetail) => void;
  staleness: (level: Staleness, ageMs: number) => void;
  info: (data: import("./protocol.js").InfoMessage["data"]) => void;
  resumed: (details: { recovered: boolean; from: number; to: number }) => void;
  error: (data: ErrorData | { code: "CONNECT_FAILED"; message: string; details: {} }) => void;
  close: (close: { code: number; reason: string; cause: string | null; wasConnected: boolean }) => void;
}

export interface Portfolio {
  positions: Map<string, Position>;
  orders: Map<string, Order>;
  account: Account | null;
  /** Oldest first, at most maxTrades. */
  trades: Trade[];
}

export declare function connectionState(status: Status, staleness: Staleness): ConnectionState;

export declare class PortfolioStream {
  constructor(options?: Options);
  readonly options: Readonly<Options>;
  readonly portfolio: Portfolio;
  readonly status: Status;
  readonly statusDetail: StatusDetail | undefined;
  readonly staleness: Staleness;
  /** connectionState(status, staleness). */
  readonly state: ConnectionState;
  /** The highest seq applied: the resumeFrom of the next connect. */
  readonly lastSeq: number | null;
  /** ms epoch of the last message, pong or successful poll. */
  readonly lastMessageAt: number | null;
  /** Consecutive connects that failed (reset by CONNECTED). */
  readonly attempt: number;
  readonly pollReason: "disabled" | "limit" | "unreachable" | null;
  /** Register a callback; returns a function that removes it. */
  on<K extends keyof Handlers>(name: K, fn: Handlers[K]): () => void;
  start(): this;
  /** Close for good (1000): no reconnect, no polling. */
  stop(): void;
  /** Skip the wait: try the socket now (e.g. on the browser's `online` event). */
  reconnectNow(): void;
}
