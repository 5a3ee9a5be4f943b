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
 * A stateful operation (REGISTER, UNREGISTER, SUBSCRIBE, UNSUBSCRIBE,
 * WATCH, UNWATCH) goes through async_stateful_op(): it sends the frame,
 * waits for its answer (OK/ERROR; for WATCH the first PRESENCE or ERROR),
 * and on success adds the record to the list (ASYNC_REC_ADD) or removes
 * the matching one (ASYNC_REC_REMOVE) before the completion callback runs.
 *
 * Identity. A name record is identified by its name. A subscription or
 * watch record is identified by app_id, the id of the frame that created
 * it, which is what the application holds; the broker knows it under
 * wire_id, the id of the frame that (re)created it on the current
 * connection (app_id until the first replay). Deliveries (PUBLISH, GAP,
 * PRESENCE) are translated from wire_id to app_id before any callback
 * sees them, and UNSUBSCRIBE/UNWATCH carry wire_id. A record whose
 * removal is in flight (removing) is not replayed; its removal answered
 * NO_SUCH_REQUEST then means it is already gone, which is success.
 */
#ifndef IPCHUB_CLIENT_ASYNC_H
#define IPCHUB_CLIENT_ASYNC_H

#include <stdbool.h>
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
	uint64_t app_id;  /* SUBSCRIBE, WATCH: id the application holds; 0 names */
	uint64_t wire_id; /* SUBSCRIBE, WATCH: id on the current connection */
	bool removing;    /* UNSUBSCRIBE/UNWATCH in flight: do not replay */
};

enum async_rec_action {
	ASYNC_REC_NONE = 0,
	ASYNC_REC_ADD,   /* on OK: append r (no-op if an equal record exists) */
	ASYNC_REC_REMOVE /* on OK: remove the record equal to r */
};

/* Send a frame of frame_kind whose header carries r's fields, with a
 * fresh id, as a name operation (deadline opts.timeout_ms); apply action
 * to the restore list on OK, then call cb (may be NULL) exactly once.
 * For SUBSCRIBE and WATCH with ASYNC_REC_ADD, the record's app_id and
 * wire_id become the frame's id (stored in *id_out, may be NULL). For
 * UNSUBSCRIBE and UNWATCH, r is the record to remove (found by app_id)
 * and the frame carries {sub: its wire_id}.
 * Returns IPCHUB_OK, IPCHUB_E_NOMEM, IPCHUB_E_CLOSED, or
 * IPCHUB_E_WRONG_THREAD. The caller has validated r's string. */
int async_stateful_op(ipchub_async *a, uint8_t frame_kind,
		      const struct async_rec *r, enum async_rec_action action,
		      ipchub_async_done_fn cb, void *ud, uint64_t *id_out);

/* Direct edits of the restore list (no frame sent): for state the broker
 * confirmed by other means. add is a no-op for an existing equal record;
 * remove returns whether one was removed. add: IPCHUB_OK or
 * IPCHUB_E_NOMEM. */
int async_restore_add(ipchub_async *a, const struct async_rec *r);
int async_restore_remove(ipchub_async *a, const struct async_rec *r);

#endif
