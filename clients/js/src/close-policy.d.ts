// close-policy.d.ts: types of close-policy.js (the close-policy table, docs/clients.md).

export type CloseAction = "stop" | "reconnect" | "poll";
export type CloseDelay = "none" | "backoff" | "backoff_slow" | "poll_retry";
export interface ClosePolicy { action: CloseAction; delay: CloseDelay }
export type CloseCause =
  | "SERVER_SHUTTING_DOWN" | "HEARTBEAT_TIMEOUT" | "AUTHENTICATION_REQUIRED" | "SESSION_EXPIRED"
  | "CONNECTION_LIMIT" | "RATE_LIMIT_EXCEEDED" | "MESSAGE_TOO_BIG" | "INTERNAL_ERROR" | "SERVER_CAPACITY"
  | "STREAMING_DISABLED" | "SLOW_CONSUMER" | "STALE_CONNECTION_SLOTS" | "INVALID_DATA";

export declare const CLOSE_CAUSES: Readonly<Record<CloseCause, Readonly<ClosePolicy & { code: number }>>>;
export declare const CLOSE_CODES: Readonly<Record<1000 | 1001 | 1006 | 1007 | 1008 | 1009 | 1011 | 1013, Readonly<ClosePolicy>>>;

/** The table's answer for a close with `code`, after an `error` whose data.code was `cause`. */
export declare function closePolicy(code: number, cause?: string | null): ClosePolicy;
/** Full jitter: a random delay in [0, min(maxDelayMs, baseDelayMs * 2^attempt)). */
export declare function backoffDelay(attempt: number, options: { baseDelayMs: number; maxDelayMs: number },
                                     random?: () => number): number;
/** While polling, the wait before socket retry n: min(socketRetryMs, 1 s * 2^n), jittered to 50-100 %. */
export declare function socketRetryDelay(n: number, options: { socketRetryMs: number }, random?: () => number): number;

export interface CloseState {
  /** Attempts in a row never admitted, this one included. */
  failures: number;
  /** Already polling. */
  polling: boolean;
  /** The backoff exponent: reconnects since the last admitted socket. */
  attempt: number;
  /** Socket retries since polling started. */
  retries?: number;
}
export interface StepOptions {
  baseDelayMs: number; maxDelayMs: number; slowDownDelayMs: number; maxFailedAttempts: number; socketRetryMs: number;
}
/** The step after a close: stop, reconnect after delayMs, or poll (and retry the socket after delayMs). */
export declare function nextStep(code: number, cause: string | null, state: CloseState, options: StepOptions,
                                 random?: () => number): { action: CloseAction; delayMs: number };
