/*
 * lend.c - messages lent in place from the inbound buffer; see lend.h for
 * the model and the invariant the session keeps while a loan is active.
 *
 * Under AddressSanitizer, the end of a loan that consumes its frame
 * poisons the frame's bytes until the buffer is next handed out for
 * reading (sess_lend_unpoison from sess_in_space), so a read of a lent
 * message after its loan ended - by the library (e.g. a reply copying a
 * lent body too late) or by a test - is reported there rather than
 * passing silently because the bytes happen to be still in place.
 */
#include "lend.h"
#include "msg.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LEND_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define LEND_ASAN 1
#endif
#ifdef LEND_ASAN
#include <sanitizer/asan_interface.h>
#define LEND_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define LEND_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define LEND_POISON(p, n) ((void)(p), (void)(n))
#define LEND_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

int sess_make_msg(struct sess *s, const struct frame_hdr *h,
		  const void *body, size_t len, ipchub_msg **out)
{
	ipchub_msg *m = s->lend.slot;

	if (!m)
		return msg_from_frame(h, body, len, out);
	msg_fill(m, h);
	m->lent = true;
	m->size = sizeof(*m);
	/* The header's strings are NUL-terminated by frame_decode(). */
	if (h->has & FH(WK_FROM))
		m->from = h->from;
	if (h->has & FH(WK_TO))
		m->to = h->to;
	if (h->has & FH(WK_MSG))
		m->errtext = h->msg;
	if (h->has & FH(WK_TOPIC))
		m->topic = h->topic;
	if (h->has & FH(WK_NAME))
		m->name = h->name;
	if (len > 0) {
		m->body = body;
		m->body_len = len;
	}
	s->lend.active = true;
	s->lend.consume = 0;
	*out = m;
	return IPCHUB_OK;
}

ipchub_msg *sess_lend_body(struct sess *s, const void *body, size_t len)
{
	ipchub_msg *m = s->lend.slot;

	m->body = len ? body : NULL;
	m->body_len = len;
	s->lend.active = true;
	s->lend.consume = 0;
	return m;
}

bool sess_lend_hold(struct sess *s, size_t total)
{
	if (!s->lend.active)
		return false;
	s->lend.consume = total;
	return true;
}

void sess_lend_end(struct sess *s)
{
	if (!s->lend.active)
		return;
	LEND_POISON(s->in.data + s->in.off, s->lend.consume);
	s->in.off += s->lend.consume;
	if (s->in.off == s->in.len)
		s->in.off = s->in.len = 0;
	s->lend.active = false;
	s->lend.consume = 0;
}

void sess_lend_unpoison(struct sess *s)
{
	if (s->in.data)
		LEND_UNPOISON(s->in.data, s->in.cap);
}
