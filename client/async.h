/*
 * async.h - internals of the event-driven API shared with future stateful
 * features (pub/sub, watches) (internal).
 *
 * Model: an ipchub_async handle keeps a restore list, an ordered list of
 * records (kind, one string header field, optionally one number field)
 * that stand for broker-side state the connection holds. After every
 * reconnection the records are replayed, in the order they were added, as
 * frames of their kind, before anything queued during the outage; a
 * record the broker refuses is dropped and reported in RECONNECTED.
 *
 * A stateful operation (REGISTER, UNREGISTER, and later SUBSCRIBE,
 * UNSUBSCRIBE, WATCH, UNWATCH) goes through async_stateful_op(): it sends
 * the frame, waits for OK/ERROR, and on OK adds the record to the list
 * (ASYNC_REC_ADD) or removes the matching one (ASYNC_REC_REMOVE) before
 * the completion callback runs. Adding SUBSCRIBE restoration is therefore
 * one call:
 *   struct async_rec r = { .kind = WIRE_SUBSCRIBE, .skey = WK_TOPIC,
 *                          .nkey = WK_POLICY, .num = policy, ... };
 *   async_stateful_op(a, WIRE_SUBSCRIBE, &r, ASYNC_REC_ADD, cb, ud);
 * and UNSUBSCRIBE the same with .kind = WIRE_SUBSCRIBE (the record to
 * remove) and frame kind WIRE_UNSUBSCRIBE, ASYNC_REC_REMOVE.
 */
#ifndef IPCHUB_CLIENT_ASYNC_H
#define IPCHUB_CLIENT_ASYNC_H

#include <stdint.h>

#include "frame.h"
#include "ipchub.h"

/* One piece of broker-side state to restore. */
struct async_rec {
	uint8_t kind;  /* frame kind replayed: WIRE_REGISTER, WIRE_SUBSCRIBE, ... */
	uint8_t skey;  /* header key of str: WK_NAME, WK_TOPIC */
	uint8_t nkey;  /* header key of num (WK_POLICY, WK_FLAGS), 0: none */
	uint32_t num;
	uint16_t len;
	char str[IPCHUB_MAX_NAME + 1];
};

enum async_rec_action {
	ASYNC_REC_NONE = 0,
	ASYNC_REC_ADD,   /* on OK: append r (no-op if an equal record exists) */
	ASYNC_REC_REMOVE /* on OK: remove the record equal to r */
};

/* Send a frame of frame_kind whose header carries r's fields, with a
 * fresh id, as a name operation (deadline opts.timeout_ms); apply action
 * to the restore list on OK, then call cb (may be NULL) exactly once.
 * Returns IPCHUB_OK, IPCHUB_E_NOMEM, IPCHUB_E_CLOSED, or
 * IPCHUB_E_WRONG_THREAD. The caller has validated r's string. */
int async_stateful_op(ipchub_async *a, uint8_t frame_kind,
		      const struct async_rec *r, enum async_rec_action action,
		      ipchub_async_done_fn cb, void *ud);

/* Direct edits of the restore list (no frame sent): for state the broker
 * confirmed by other means. add is a no-op for an existing equal record;
 * remove returns whether one was removed. add: IPCHUB_OK or
 * IPCHUB_E_NOMEM. */
int async_restore_add(ipchub_async *a, const struct async_rec *r);
int async_restore_remove(ipchub_async *a, const struct async_rec *r);

#endif
