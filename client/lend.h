/*
 * lend.h - messages lent in place from the session's inbound buffer, for
 * ipchub_recv_lent() (internal).
 *
 * Model: a loan is one message event built without allocation in a slot
 * the caller provides (sess.lend.slot): its scalar fields come from the
 * decoded header, its strings point into the session's scratch header
 * (sess.hdr) and its body points at the body bytes in place in the
 * received frame (sess.in). While the loan is active (sess.lend.active)
 * the session keeps three things still: the frame's bytes are not
 * consumed (the consumption is deferred to sess_lend_end(): sess.lend.
 * consume bytes, or none while the rest of a batch is still being split),
 * the inbound buffer is neither compacted, reallocated nor freed
 * (sess_in_space() refuses), and nothing is decoded (sess_next_event()
 * refuses), so the scratch header and the split cursor are not touched.
 * Both refusals return IPCHUB_E_INVALID without killing the session: they
 * can only be reached by a caller that forgot to end the loan, and the
 * blocking API ends it on entry to every call (ipchub.c).
 *
 * Only SEND, REQUEST, REPLY, PUBLISH, GAP, PRESENCE and MONITOR events
 * are lent; ERRORs (including the elements of a multi-id ERROR) stay
 * owned objects, as they go through the handle's queue.
 */
#ifndef IPCHUB_CLIENT_LEND_H
#define IPCHUB_CLIENT_LEND_H

#include <stdbool.h>
#include <stddef.h>

#include "frame.h"
#include "sess.h"

/* The message event for header h (sess.hdr) and body[0..len): built in
 * sess.lend.slot when one is set (IPCHUB_OK, *out = the slot, the loan
 * active), else allocated by msg_from_frame() (IPCHUB_OK or
 * IPCHUB_E_NOMEM, *out untouched on failure). */
int sess_make_msg(struct sess *s, const struct frame_hdr *h,
		  const void *body, size_t len, ipchub_msg **out);

/* Lend the slot again with another body, its other fields unchanged:
 * for the next element of the batch whose element the slot last held
 * (only the session writes the slot, so they are still that batch's).
 * Returns the slot. */
ipchub_msg *sess_lend_body(struct sess *s, const void *body, size_t len);

/* Where the frame of total bytes would be consumed: when a loan is
 * active, defer that to sess_lend_end() and return true (the caller must
 * not consume it); else false. */
bool sess_lend_hold(struct sess *s, size_t total);

/* End the loan, if any: consume the lent frame when its last message was
 * lent. The slot's contents are stale afterwards. */
void sess_lend_end(struct sess *s);

/* Before the inbound buffer is compacted, grown, freed or read into:
 * lift the AddressSanitizer poison sess_lend_end() put on consumed lent
 * frames (nothing without ASan). */
void sess_lend_unpoison(struct sess *s);

static inline bool sess_lent(const struct sess *s) { return s->lend.active; }

#endif
