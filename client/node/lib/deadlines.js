'use strict';
/*
 * deadlines.js - many one-shot timeouts on one Node timer.
 *
 * The local backup timer of every request (client.js) used to be a
 * setTimeout of its own: a Timeout object, an async resource, a timer-list
 * insertion and a clearTimeout on every round trip, for a timer that almost
 * never fires. Here an armed item waits in a FIFO per duration: items armed
 * with the same duration expire in the order they were armed, so only the
 * head of each FIFO is watched, and one timer is armed for the earliest
 * head. cancel() is O(1) and lazy: the item is marked and dropped when it
 * reaches its FIFO's head (or at once when the next arm() finds it there,
 * which keeps the FIFO of sequential requests at one item). The owner (one
 * Hub) holds the Deadlines; an item is any object, which gets the fields
 * dlAt (deadline) and dlFn (its callback, null once cancelled or fired).
 * Callbacks run from the timer only, never inside arm() or cancel(). The
 * timer is unref()'d: pending deadlines do not keep the process alive.
 */

const COMPACT_AT = 1024; // drop a FIFO's consumed prefix once it is this long and half the FIFO

class Deadlines {
  /** clock(): the current time in ms (monotonic). */
  constructor(clock) {
    this._clock = clock;
    this._qs = new Map(); // duration (ms) -> {items, head}
    this._timer = null;
    this._at = Infinity;  // when the timer fires
  }

  /** Call fn() once, ms from now, unless cancel(item) comes first. */
  arm(item, ms, fn) {
    const at = this._clock() + ms;
    item.dlAt = at;
    item.dlFn = fn;
    let q = this._qs.get(ms);
    if (q === undefined) {
      q = { items: [], head: 0 };
      this._qs.set(ms, q);
    }
    const items = q.items;
    while (q.head < items.length && items[q.head].dlFn === null) items[q.head++] = undefined;
    if (q.head === items.length) {
      items.length = 0;
      q.head = 0;
    }
    items.push(item);
    if (at < this._at) this._schedule(at);
  }

  /** The item's callback will not run. Idempotent. */
  cancel(item) {
    item.dlFn = null;
  }

  /** Forget everything (the owner is closing). */
  clear() {
    if (this._timer) clearTimeout(this._timer);
    this._timer = null;
    this._at = Infinity;
    for (const q of this._qs.values()) for (let i = q.head; i < q.items.length; i++) q.items[i].dlFn = null;
    this._qs.clear();
  }

  _schedule(at) {
    if (this._timer) clearTimeout(this._timer);
    this._at = at;
    this._timer = setTimeout(() => this._fire(), Math.max(0, Math.ceil(at - this._clock())));
    if (this._timer.unref) this._timer.unref();
  }

  _fire() {
    this._timer = null;
    this._at = Infinity;
    const t = this._clock();
    let next = Infinity;
    const due = [];
    for (const [ms, q] of this._qs) {
      const items = q.items;
      while (q.head < items.length) {
        const it = items[q.head];
        if (it.dlFn !== null && it.dlAt > t) {
          if (it.dlAt < next) next = it.dlAt;
          break;
        }
        items[q.head++] = undefined;
        if (it.dlFn !== null) due.push(it);
      }
      if (q.head === items.length) {
        this._qs.delete(ms);
      } else if (q.head >= COMPACT_AT && q.head * 2 >= items.length) {
        items.splice(0, q.head);
        q.head = 0;
      }
    }
    if (next !== Infinity) this._schedule(next);
    // A late timer (a loaded machine) finds several FIFOs due at once:
    // fire in deadline order, not in the Map's order of durations.
    if (due.length > 1) due.sort((x, y) => x.dlAt - y.dlAt);
    for (const it of due) {
      const fn = it.dlFn;
      it.dlFn = null;
      fn();
    }
  }
}

module.exports = { Deadlines };
