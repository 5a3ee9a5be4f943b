'use strict';
/*
 * pubsub.js - the application-side handles of PROTOCOL.md section 10:
 * Subscription (SUBSCRIBE ... UNSUBSCRIBE) and Watch (WATCH ... UNWATCH),
 * plus the local checks of topics and patterns.
 *
 * Model: a handle is created and owned by its Hub (client.js) and lives
 * until unsubscribe()/unwatch() or the hub's close; the application holds
 * it for that whole time, across reconnects. `id` is the broker-side id on
 * the current connection (the id of the SUBSCRIBE/WATCH that made it); a
 * reconnect gives the handle a new id and the hub re-maps it, so frames
 * are routed by id but the handle the application sees never changes.
 * `epoch` is the connection the id belongs to. `active` goes false exactly
 * once, when the handle ends; after that nothing is delivered to it.
 * Callbacks and listeners that throw do not corrupt the hub: the exception
 * is rethrown on the next tick (an uncaught exception, as with emit()).
 */

const { EventEmitter } = require('events');
const { IpchubError } = require('./errors');

const SEGMENT_RE = /^[A-Za-z0-9_-]+$/;
const MAX_PATTERN = 255; // PROTOCOL.md section 10.1: a pattern is 1..255 bytes

/** Throws BAD_NAME unless `p` is a pattern of section 10.1 (INVALID if not a string). */
function checkPattern(p) {
  if (typeof p !== 'string') throw new IpchubError('INVALID', `ipchub: pattern must be a string, not ${typeof p}`);
  const len = Buffer.byteLength(p, 'utf8');
  const segs = p.split('.');
  const ok = len >= 1 && len <= MAX_PATTERN && segs.every((s, i) =>
    s === '*' || (s === '>' && i === segs.length - 1) || SEGMENT_RE.test(s));
  if (!ok) {
    throw new IpchubError('BAD_NAME', `ipchub: malformed pattern ${JSON.stringify(p)} (dot-separated segments of ` +
      '[A-Za-z0-9_-], "*" for one segment, ">" as the last for the rest)', { hubName: p });
  }
}

// Call fn(...args); a throw is rethrown on the next tick.
function callSafe(fn, ...args) {
  try {
    fn(...args);
  } catch (err) {
    process.nextTick(() => {
      throw err;
    });
  }
}

function emitSafe(em, event, ...args) {
  try {
    return em.emit(event, ...args);
  } catch (err) {
    process.nextTick(() => {
      throw err;
    });
    return true;
  }
}

/**
 * A subscription: callback(value, meta) for each publication, in order;
 * 'gap' ({ sub, count }) where publications were lost (and meta.gap on the
 * next delivery); 'publication' (value, meta) as well.
 */
class Subscription extends EventEmitter {
  constructor(hub, pattern, policy, callback) {
    super();
    this.hub = hub;
    this.pattern = pattern;
    this.policy = policy;
    this.id = null;       // broker-side id on connection `epoch`
    this.epoch = -1;
    this.active = true;
    this.drops = 0;       // publications lost so far (sum of GAP counts)
    this._callback = callback;
    this._gap = 0;        // lost since the last delivery: goes on the next meta
  }

  _deliver(value, meta) {
    if (this._gap) {
      meta.gap = this._gap;
      this._gap = 0;
    }
    if (this._callback) callSafe(this._callback, value, meta);
    emitSafe(this, 'publication', value, meta);
  }

  _lost(count) {
    this._gap += count;
    this.drops += count;
    const info = { sub: this, count };
    emitSafe(this, 'gap', info);
    return info;
  }

  /** End the subscription; resolves once the broker confirmed (or the connection is gone). */
  unsubscribe() {
    return this.hub._unsubscribe(this);
  }
}

/**
 * A watch on a name: callback(ev) for the current state at once (and again
 * after each reconnect), then for every change; also emitted as 'presence'.
 * `owner` is the connection id owning the name, or null.
 */
class Watch extends EventEmitter {
  constructor(hub, name, callback) {
    super();
    this.hub = hub;
    this.name = name;
    this.id = null;
    this.epoch = -1;
    this.active = true;
    this.owner = null;
    this._callback = callback;
  }

  _deliver(ev) {
    this.owner = ev.event === 'owned' || ev.event === 'registered' ? ev.owner : null;
    if (this._callback) callSafe(this._callback, ev);
    emitSafe(this, 'presence', ev);
  }

  /** Stop watching; resolves once the broker confirmed (or the connection is gone). */
  unwatch() {
    return this.hub._unwatch(this);
  }
}

module.exports = { Subscription, Watch, checkPattern, MAX_PATTERN };
