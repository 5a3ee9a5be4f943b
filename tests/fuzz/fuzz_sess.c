/*
 * fuzz_sess.c - the client session's inbound path (client/sess.c and the
 * batch splitter, client/batch.c) on arbitrary broker bytes.
 *
 * Model: a session past a WELCOME with BATCH is fed the input in chunks
 * whose sizes come from the input's first byte, and events are pulled
 * after every chunk, so frames (and batches being split) straddle reads
 * and inbound-buffer compactions. Whatever the bytes, the session must
 * either produce events or die with a documented code, and every message
 * it hands out must be well formed: a SEND's body is exactly one valid
 * msgpack value, and the ids of one batch are consecutive. Every other
 * event is pulled in lending mode (lend.h): a lent message's body lies in
 * the inbound buffer, and until the loan ends the session refuses to
 * decode or to make read room.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "lend.h"
#include "limits.h"
#include "msg.h"
#include "sess.h"

static void welcome(struct sess *s)
{
	struct frame_hdr h;
	uint8_t buf[FRAME_ENC_MAX];
	struct sess_event ev;
	size_t n;

	sess_init(s);
	if (sess_queue_hello(s, "fuzz") != IPCHUB_OK)
		abort();
	frame_init(&h, WIRE_WELCOME);
	h.ver = 1;
	h.conn = 1;
	h.max_frame = IPCHUB_MAX_FRAME_MIN;
	h.flags = WF_BATCH;
	h.has |= FH(WK_VER) | FH(WK_CONN) | FH(WK_MAX_FRAME) | FH(WK_FLAGS);
	frame_set_str(&h, WK_BROKER, "0123456789abcdef0123456789abcdef", 32);
	n = frame_encode(&h, 0, buf, sizeof(buf));
	if (sess_feed(s, buf, n) != IPCHUB_OK ||
	    sess_next_event(s, &ev) != IPCHUB_OK ||
	    ev.type != SESS_EV_WELCOME || !s->batch_ok)
		abort();
}

/* Pull events until none is buffered; false once the session is dead. */
static int drain(struct sess *s)
{
	uint64_t last = 0;
	unsigned k = 0;
	ipchub_msg slot;

	for (;;) {
		struct sess_event ev;
		/* Inside a frame being split, ids follow one another. */
		int mid = s->split.n != 0 && s->split.i > 0;
		int rc;

		s->lend.slot = (k++ & 1) ? &slot : NULL;
		rc = sess_next_event(s, &ev);
		s->lend.slot = NULL;

		if (rc == IPCHUB_E_NOMEM)
			abort(); /* not under a failing allocator here */
		if (rc != IPCHUB_OK) {
			if (s->state != SESS_DEAD || rc != s->dead)
				abort();
			return 0;
		}
		if (ev.type == SESS_EV_NONE)
			return 1;
		if (mid && ev.id != last + 1)
			abort();
		last = ev.id;
		if (ev.msg) {
			size_t len;
			const void *body = ipchub_msg_body(ev.msg, &len);

			if (ipchub_msg_id(ev.msg) != ev.id)
				abort();
			if (body && ipchub_body_check(body, len) != IPCHUB_OK)
				abort();
			if (ev.msg->lent) {
				uint8_t *p;
				size_t cap;

				if (ev.msg != &slot || !sess_lent(s) ||
				    (body && ((const uint8_t *)body < s->in.data ||
					      (const uint8_t *)body + len >
						      s->in.data + s->in.len)) ||
				    sess_in_space(s, &p, &cap) != IPCHUB_E_INVALID ||
				    sess_next_event(s, &ev) != IPCHUB_E_INVALID)
					abort();
				ipchub_msg_free(&slot); /* ignored */
				sess_lend_end(s);
			} else {
				ipchub_msg_free(ev.msg);
			}
		}
		if (ev.type == SESS_EV_BYE)
			return 0;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sess s;
	size_t chunk, off = 1;

	if (size < 1)
		return 0;
	chunk = (size_t)data[0] * 7 + 1;
	welcome(&s);
	while (off < size) {
		size_t n = size - off < chunk ? size - off : chunk;

		if (sess_feed(&s, data + off, n) != IPCHUB_OK)
			break;
		off += n;
		if (!drain(&s))
			break;
	}
	sess_destroy(&s);
	return 0;
}
