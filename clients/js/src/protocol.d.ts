// protocol.d.ts: every message of the portfolio-ws protocol (docs/protocol.md), as TypeScript.
// Interface names are the AsyncAPI document's schema names (portfolio_ws/apidocs/asyncapi.yaml);
// tests/process/clients_js/test_types_match_asyncapi.py checks every field, its optionality, nullability,
// constants and enums against that document.

/** Money and prices: decimal strings, 2 decimals (4 below $1.00). Parse with a decimal library. */
export type Money = string;
/** Money without a sign: a position's marketValue (its side says long or short). */
export type UnsignedMoney = Money;
/** Percentages, times 100, 2 decimals: "3.08" is 3.08 %. */
export type Percent = string;
/** Quantities: exact decimal strings, no trailing zeros: "100", "0.5", "0". */
export type Quantity = string;
/** A quantity more than zero: a trade's. */
export type PositiveQuantity = Quantity;
/** ISO 8601 UTC with milliseconds and Z: "2026-01-05T15:00:00.000Z". */
export type Timestamp = string;
/** Per-user offset: keep the highest one applied and send it as resumeFrom. */
export type Seq = number;

export type Channel = "positions" | "orders" | "account" | "trades";
/** A client's channel list (non-empty). */
export type Channels = Channel[];
/** The server's subscribed set, in the canonical order. */
export type ChannelSet = Channel[];
export type Id = string;
export type NullableId = Id | null;
export type NullableTimestamp = Timestamp | null;
export type NullableMoney = Money | null;
export type OrderStatus =
  | "pending_new" | "new" | "accepted" | "partially_filled" | "filled" | "canceled" | "rejected" | "expired";

// ---- payloads ----------------------------------------------------------------------------------
export interface Position {
  symbol: string;
  /** Unsigned; "0" means the position was closed: remove the row. */
  quantity: Quantity;
  currentPrice: Money;
  entryPrice: Money;
  unrealizedPnl: Money;
  unrealizedPnlPercent: Percent;
  marketValue: UnsignedMoney;
  side: "long" | "short";
  strategyId: string | null;
  openedAt: Timestamp | null;
}

export interface Order {
  orderId: string;
  brokerOrderId: string | null;
  symbol: string;
  side: "buy" | "sell";
  /** market, limit, stop, stop_limit; a live Alpaca account may report its other types. */
  type: string;
  status: OrderStatus;
  qty: Quantity;
  filledQty: Quantity;
  filledAvgPrice: Money | null;
  limitPrice: Money | null;
  stopPrice: Money | null;
  submittedAt: Timestamp;
  filledAt: Timestamp | null;
}

export interface Account {
  equity: Money;
  buyingPower: Money;
  cash: Money;
  portfolioValue: Money;
  dayPnl: Money;
  dayPnlPercent: Percent;
  timestamp: Timestamp;
}

export interface Trade {
  tradeId: string;
  symbol: string;
  side: "buy" | "sell";
  quantity: PositiveQuantity;
  price: Money;
  pnl: Money | null;
  executedAt: Timestamp;
  strategyId: string | null;
}

/** A batch's data: only the non-empty channels of the window are present; account is one object. */
export interface BatchData {
  positions?: Position[];
  orders?: Order[];
  account?: Account;
  trades?: Trade[];
}

/** A snapshot's data: exactly the channels it holds (account null before the first balance). */
export interface SnapshotData {
  positions?: Position[];
  orders?: Order[];
  account?: Account | null;
  trades?: Trade[];
}

// ---- client -> server --------------------------------------------------------------------------
export interface SubscribeMessage {
  type: "subscribe";
  channels: Channel[];
  /** The highest seq applied; null means absent. */
  resumeFrom?: Seq | null;
}

export interface UnsubscribeMessage {
  type: "unsubscribe";
  channels: Channel[];
}

export interface PingMessage {
  type: "ping";
}

export type ClientMessage = SubscribeMessage | UnsubscribeMessage | PingMessage;

// ---- server -> client: control -----------------------------------------------------------------
interface Envelope {
  timestamp: Timestamp;
  userId: string;
}

export interface ConnectedMessage extends Envelope {
  type: "info";
  data: {
    code: "CONNECTED";
    message: string;
    details: {
      connectionId: string;
      availableChannels: Channel[];
      batchWindowMs: number;
      limits: {
        connectionsPerUser: number;
        totalConnections: number;
        messagesPerSecond: number;
        /** Bytes a second the client may send (frames' payloads), beside the frame count. */
        bytesPerSecond: number;
        maxMessageBytes: number;
      };
    };
  };
}

export interface SubscribedMessage extends Envelope {
  type: "info";
  data: { code: "SUBSCRIBED"; message: string; details: { channels: Channel[] } };
}

export interface UnsubscribedMessage extends Envelope {
  type: "info";
  data: { code: "UNSUBSCRIBED"; message: string; details: { channels: Channel[] } };
}

export interface ResumedMessage extends Envelope {
  type: "info";
  data: { code: "RESUMED"; message: string; details: { recovered: boolean; from: Seq; to: Seq } };
}

/** Sent just before a close, naming its cause: act on `code`, never on the reason text. */
export interface CloseCauseError {
  code:
    | "SERVER_SHUTTING_DOWN" | "HEARTBEAT_TIMEOUT" | "SESSION_EXPIRED" | "CONNECTION_LIMIT"
    | "RATE_LIMIT_EXCEEDED" | "INTERNAL_ERROR" | "SERVER_CAPACITY" | "STREAMING_DISABLED" | "SLOW_CONSUMER"
    | "STALE_CONNECTION_SLOTS" | "INVALID_DATA";
  message: string;
  details: { closeCode: 1001 | 1007 | 1008 | 1011 | 1013 };
}

export interface PlainError {
  code: "INVALID_JSON" | "INVALID_MESSAGE";
  message: string;
  details: Record<string, never>;
}

export interface UnknownTypeError {
  code: "UNKNOWN_MESSAGE_TYPE";
  message: string;
  details: { type: string; validTypes: Array<"subscribe" | "unsubscribe" | "ping"> };
}

export interface SubscriptionError {
  code: "SUBSCRIPTION_FAILED";
  message: "Invalid channel name";
  details: { channel: string; validChannels: Channel[] };
}

export interface RateLimitedError {
  code: "RATE_LIMITED";
  message: string;
  details: { limitPerSecond: number; bytesPerSecond: number };
}

export type ErrorData = PlainError | UnknownTypeError | SubscriptionError | RateLimitedError | CloseCauseError;

export interface ErrorMessage extends Envelope {
  type: "error";
  data: ErrorData;
}

export interface PongMessage extends Envelope {
  type: "pong";
  data: Record<string, never>;
}

// ---- server -> client: data --------------------------------------------------------------------
export interface PositionUpdateMessage extends Envelope { type: "position_update"; seq: Seq; data: Position }
export interface OrderUpdateMessage extends Envelope { type: "order_update"; seq: Seq; data: Order }
export interface AccountUpdateMessage extends Envelope { type: "account_update"; seq: Seq; data: Account }
export interface TradeExecutedMessage extends Envelope { type: "trade_executed"; seq: Seq; data: Trade }
export interface BatchMessage extends Envelope { type: "batch"; seq: Seq; data: BatchData }
export interface SnapshotMessage extends Envelope { type: "snapshot"; seq: Seq; data: SnapshotData }

export type DataMessage =
  | PositionUpdateMessage | OrderUpdateMessage | AccountUpdateMessage | TradeExecutedMessage
  | BatchMessage | SnapshotMessage;
export type InfoMessage = ConnectedMessage | SubscribedMessage | UnsubscribedMessage | ResumedMessage;
export type ServerMessage = DataMessage | InfoMessage | ErrorMessage | PongMessage;
