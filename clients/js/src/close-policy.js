// @ts-check
// close-policy.js: what a client does after the server closes its socket. The close-policy table
// of portfolio_ws/constants.py (CLOSE_CAUSES, CLOSE_CODES), mirrored here row for row;
// tests/unit/portfolio_ws/client/test_close_policy.py runs this module in node and compares it, and nextStep, with
// the Python client's on every input. docs/clients.md shows the table.
//
// Before a close the server sends an `error` whose data.code names the cause (SESSION_EXPIRED,
// CONNECTION_LIMIT, ...) and data.details.closeCode the close that follows. Decisions use the
// close code and that cause, never the reason text.

/**
 * @typedef {"stop" | "reconnect" | "poll"} CloseAction
 * @typedef {"none" | "backoff" | "backoff_slow" | "poll_retry"} CloseDelay
 * @typedef {{ action: CloseAction, delay: CloseDelay }} ClosePolicy
 */

/** @type {Readonly<ClosePolicy>} */ const STOP = Object.freeze({ action: "stop", delay: "none" });
/** @type {Readonly<ClosePolicy>} */ const RECONNECT = Object.freeze({ action: "reconnect", delay: "backoff" });
/** @type {Readonly<ClosePolicy>} */ const RECONNECT_SLOW = Object.freeze({ action: "reconnect", delay: "backoff_slow" });
/** @type {Readonly<ClosePolicy>} */ const POLL = Object.freeze({ action: "poll", delay: "poll_retry" });

/** Each cause the server names: its close code and the policy. */
export const CLOSE_CAUSES = Object.freeze({
  SERVER_SHUTTING_DOWN: Object.freeze({ code: 1001, ...RECONNECT }),
  HEARTBEAT_TIMEOUT: Object.freeze({ code: 1001, ...RECONNECT }),
  AUTHENTICATION_REQUIRED: Object.freeze({ code: 1008, ...STOP }),   // never announced: no data before an auth refusal
  SESSION_EXPIRED: Object.freeze({ code: 1008, ...STOP }),
  CONNECTION_LIMIT: Object.freeze({ code: 1008, ...POLL }),
  RATE_LIMIT_EXCEEDED: Object.freeze({ code: 1008, ...STOP }),
  MESSAGE_TOO_BIG: Object.freeze({ code: 1009, ...STOP }),           // never announced: the WebSocket layer closes first
  INTERNAL_ERROR: Object.freeze({ code: 1011, ...RECONNECT }),
  SERVER_CAPACITY: Object.freeze({ code: 1013, ...RECONNECT_SLOW }),
  STREAMING_DISABLED: Object.freeze({ code: 1013, ...POLL }),
  SLOW_CONSUMER: Object.freeze({ code: 1013, ...RECONNECT_SLOW }),
  STALE_CONNECTION_SLOTS: Object.freeze({ code: 1013, ...RECONNECT_SLOW }),  // cluster: a stopped server's slots may count
  INVALID_DATA: Object.freeze({ code: 1007, ...STOP }),             // compressed data that doesn't inflate
});

/** A close without a (known, matching) cause: by its code alone; codes not listed reconnect. */
export const CLOSE_CODES = Object.freeze({
  1000: STOP,
  1001: RECONNECT,
  1006: RECONNECT,
  1007: STOP,
  1008: STOP,            // a 1008 without a cause is an authentication refusal
  1009: STOP,
  1011: RECONNECT,
  1013: RECONNECT_SLOW,
});

/**
 * The table's answer for a close with `code`, after an `error` whose data.code was `cause`.
 * @param {number} code
 * @param {string | null} [cause]
 * @returns {ClosePolicy}
 */
export function closePolicy(code, cause = null) {
  const known = cause != null && Object.hasOwn(CLOSE_CAUSES, cause) ? CLOSE_CAUSES[/** @type {keyof typeof CLOSE_CAUSES} */ (cause)] : null;
  if (known && known.code === code) return { action: known.action, delay: known.delay };
  const byCode = Object.hasOwn(CLOSE_CODES, code) ? CLOSE_CODES[/** @type {keyof typeof CLOSE_CODES} */ (code)] : RECONNECT;
  return { action: byCode.action, delay: byCode.delay };
}

/** Full jitter: a random delay in [0, min(cap, base * 2^attempt)).
 * @param {number} attempt
 * @param {{ baseDelayMs: number, maxDelayMs: number }} options
 * @param {() => number} [random]
 */
export function backoffDelay(attempt, { baseDelayMs, maxDelayMs }, random = Math.random) {
  return random() * Math.min(maxDelayMs, baseDelayMs * 2 ** Math.min(attempt, 62));
}

/** While polling, the wait before socket retry `n` (0, 1, ...): min(cap, 1 s * 2^n), jittered down to
 * half of it at most, so retries of many tabs spread out but never wait longer than the cap.
 * @param {number} n
 * @param {{ socketRetryMs: number }} options
 * @param {() => number} [random]
 */
export function socketRetryDelay(n, { socketRetryMs }, random = Math.random) {
  const step = Math.min(socketRetryMs, 1000 * 2 ** Math.min(n, 62));
  return step * (0.5 + 0.5 * random());
}

/**
 * The step after a close: stop, reconnect after delayMs, or poll (and retry the socket after delayMs).
 * @param {number} code
 * @param {string | null} cause  data.code of the error just before the close, if any
 * @param {{ failures: number, polling: boolean, attempt: number, retries?: number }} state  failures:
 *   attempts in a row never admitted, this one included; polling: already polling; attempt: the
 *   backoff exponent; retries: socket retries since polling started
 * @param {{ baseDelayMs: number, maxDelayMs: number, slowDownDelayMs: number,
 *           maxFailedAttempts: number, socketRetryMs: number }} options
 * @param {() => number} [random]
 * @returns {{ action: CloseAction, delayMs: number }}
 */
export function nextStep(code, cause, { failures, polling, attempt, retries = 0 }, options, random = Math.random) {
  const rule = closePolicy(code, cause);
  if (rule.action === "stop") return { action: "stop", delayMs: 0 };
  if (polling || rule.action === "poll" || failures >= options.maxFailedAttempts) {
    return { action: "poll", delayMs: socketRetryDelay(retries, options, random) };
  }
  let delayMs = backoffDelay(attempt, options, random);
  if (rule.delay === "backoff_slow") delayMs += options.slowDownDelayMs;
  return { action: "reconnect", delayMs };
}
