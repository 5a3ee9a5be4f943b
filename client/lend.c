/*
 * lend.c - messages lent in place from the inbound buffer; see lend.h for
 * the model and the invariant the session keeps while a loan is active.
 */
#include "lend.h"
#include "msg.h"

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
	s->in.off += s->lend.consume;
	if (s->in.off == s->in.len)
		s->in.off = s->in.len = 0;
	s->lend.active = false;
	s->lend.consume = 0;
}
