'use strict';
/*
 * errors.js - the closed set of ipchub error codes and the IpchubError class.
 *
 * Wire codes 0..22 are PROTOCOL.md section 7; local codes 64.. never appear
 * on the wire and share their numbers with the C library (client/ipchub.h).
 * Every error this package produces is an IpchubError whose `.code` is the
 * upper-case name ('NO_SUCH_PEER') and `.codeNumber` the number (8).
 */

const WIRE_CODES = Object.freeze({
  OK: 0,
  BAD_FRAME: 1,
  TOO_LARGE: 2,
  UNSUPPORTED_VERSION: 3,
  PROTOCOL: 4,
  BAD_NAME: 5,
  NAME_TAKEN: 6,
  NOT_OWNER: 7,
  NO_SUCH_PEER: 8,
  PEER_GONE: 9,
  TIMEOUT: 10,
  QUEUE_FULL: 11,
  LIMIT: 12,
  NOT_AUTHORIZED: 13,
  AUTH_FAILED: 14,
  NO_SUCH_REQUEST: 15,
  REMOTE_ERROR: 16,
  CANCELLED: 17,
  SHUTTING_DOWN: 18,
  INTERNAL: 19,
  BAD_BODY: 20,
  BAD_FILTER: 21,
  FDS_UNSUPPORTED: 22, // only C senders of descriptors get it: this client sends none
});

const LOCAL_CODES = Object.freeze({
  IO: 64,           // socket error or connection lost; the operation's fate is unknown
  CLOSED: 65,       // the hub was closed (by close(), or the broker ended the connection for good)
  NOMEM: 66,        // kept for parity with the C library; not produced by this package
  INVALID: 67,      // bad argument from the caller
  WOULD_BLOCK: 68,  // the outbound buffer hit its hard bound (maxBuffered)
  NO_BROKER: 69,    // nothing listens at the socket path
  INTERRUPTED: 70,  // kept for parity with the C library; not produced by this package
  BAD_KEY: 71,      // key file missing, malformed, a symlink, not ours or readable by group/other
  WRONG_THREAD: 72, // kept for parity with the C library (its event API); not produced by this package
});

const CODES = Object.freeze({ ...WIRE_CODES, ...LOCAL_CODES });

const NAMES = new Map();
for (const [name, num] of Object.entries(CODES)) NAMES.set(num, name);

// Codes after which the broker closes the connection (PROTOCOL.md section 7).
const FATAL = new Set([1, 2, 3, 4, 14]);

/** Name of a numeric code; unknown wire codes become 'UNKNOWN'. */
function codeName(num) {
  return NAMES.get(num) || 'UNKNOWN';
}

class IpchubError extends Error {
  /**
   * @param {string|number} code  upper-case name or number
   * @param {string} [message]
   * @param {object} [props]      extra fields copied onto the error (id, to, from, cause)
   */
  constructor(code, message, props) {
    let name;
    let num;
    if (typeof code === 'number') {
      num = code;
      name = codeName(code);
    } else {
      name = code;
      num = Object.prototype.hasOwnProperty.call(CODES, code) ? CODES[code] : -1;
    }
    super(message || name, props && props.cause ? { cause: props.cause } : undefined);
    this.name = 'IpchubError';
    this.code = name;
    this.codeNumber = num;
    if (props) {
      for (const k of Object.keys(props)) if (k !== 'cause') this[k] = props[k];
    }
  }
}

module.exports = { IpchubError, CODES, WIRE_CODES, LOCAL_CODES, FATAL, codeName };
