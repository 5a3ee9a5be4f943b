/*
 * batch.c - see batch.h. Splitting reads the body twice in step: an mpr
 * reader finds where each message ends (mpr_skip_value, the walker that
 * checked the batch), and a plain cursor over the same iovecs copies the
 * message's bytes out. A message of at most IPCHUB_FWD_COPY_MAX bytes is
 * copied next to its header and appended once; a larger one is appended
 * piece by piece, one per chain it spans.
 */
#include "batch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "broker.h"
#include "monitor.h"
#include "stats.h"

/* iovecs on the stack for a body spanning this many chains or fewer;
 * more are allocated for the call (the body is at most max_frame). */
#define BATCH_IOV_STACK 16

/* A position in a list of byte segments. */
struct cursor {
	const struct iovec *v;
	size_t nv, i, off;
};

/* Pass over the next n bytes, copying them to buf and/or appending them
 * to out when those are not NULL. Returns 0, or -1 if an append failed.
 * The caller knows the bytes are there (the mpr reader passed them). */
static int cur_take(struct cursor *k, size_t n, uint8_t *buf,
		    struct evbuffer *out)
{
	while (n > 0) {
		const struct iovec *s;
		size_t m;

		while (k->i < k->nv && k->off == k->v[k->i].iov_len) {
			k->i++;
			k->off = 0;
		}
		if (k->i == k->nv)
			return -1; /* not reached for a checked body */
		s = &k->v[k->i];
		m = s->iov_len - k->off < n ? s->iov_len - k->off : n;
		if (buf) {
			memcpy(buf, (const uint8_t *)s->iov_base + k->off, m);
			buf += m;
		}
		if (out &&
		    evbuffer_add(out, (const uint8_t *)s->iov_base + k->off, m) < 0)
			return -1;
		k->off += m;
		n -= m;
	}
	return 0;
}

int batch_split(struct evbuffer *src, size_t off, size_t len,
		struct frame_hdr *h, struct evbuffer *out, struct conn *tap,
		uint32_t *frames, size_t *bytes)
{
	struct iovec stack[BATCH_IOV_STACK], *v = stack;
	uint8_t buf[FRAME_ENC_MAX + IPCHUB_FWD_COPY_MAX];
	struct evbuffer_ptr pos;
	uint64_t base = h->id;
	size_t total = 0;
	struct cursor k;
	struct mpr r;
	uint32_t n = 0, i;
	int nv, rc = 0;

	if (len == 0 || off + len < off || off + len > evbuffer_get_length(src) ||
	    evbuffer_ptr_set(src, &pos, off, EVBUFFER_PTR_SET) < 0)
		return -EINVAL;
	nv = evbuffer_peek(src, (ev_ssize_t)len, &pos, v, BATCH_IOV_STACK);
	if (nv > BATCH_IOV_STACK) {
		v = malloc((size_t)nv * sizeof(*v));
		if (!v)
			return -ENOMEM;
		nv = evbuffer_peek(src, (ev_ssize_t)len, &pos, v, nv);
	}
	if (nv <= 0) {
		rc = -EINVAL;
		goto out;
	}
	mpr_init(&r, v, (size_t)nv, len);
	k = (struct cursor){ .v = v, .nv = (size_t)nv };
	if (mpr_read_array(&r, &n) != MPR_OK || n == 0 || n > IPCHUB_MAX_BATCH ||
	    cur_take(&k, len - mpr_left(&r), NULL, NULL) < 0) {
		rc = -EINVAL;
		goto out;
	}
	for (i = 0; i < n; i++) {
		uint64_t at = len - mpr_left(&r); /* message i's offset in the body */
		size_t mlen, hn;

		if (mpr_skip_value(&r, IPCHUB_MAX_BODY_DEPTH) != MPR_OK) {
			rc = -EINVAL;
			goto out;
		}
		mlen = (size_t)(len - mpr_left(&r) - at);
		h->id = base + i; /* ids wrap like any uint64 counter */
		hn = frame_encode(h, mlen, buf, FRAME_ENC_MAX);
		if (tap && monitor_active(tap->b))
			monitor_tap(tap, WIRE_MONITOR_OUT, h, buf + IPCHUB_LEN_PREFIX,
				    hn - IPCHUB_LEN_PREFIX, src, off + (size_t)at,
				    NULL, mlen);
		if (out && mlen <= IPCHUB_FWD_COPY_MAX) {
			if (cur_take(&k, mlen, buf + hn, NULL) < 0 ||
			    evbuffer_add(out, buf, hn + mlen) < 0)
				rc = -ENOMEM;
		} else if (out) {
			if (evbuffer_add(out, buf, hn) < 0 ||
			    cur_take(&k, mlen, NULL, out) < 0)
				rc = -ENOMEM;
		}
		if (rc < 0)
			goto out;
		total += hn + mlen;
	}
	if (mpr_left(&r) != 0) {
		rc = -EINVAL;
		goto out;
	}
	*frames = n;
	*bytes = total;
out:
	h->id = base;
	if (v != stack)
		free(v);
	return rc;
}

int batch_forward(struct conn *sender, struct conn_frame *f,
		  struct frame_hdr *h, struct conn *dst)
{
	struct broker *b = sender->b;
	size_t off = IPCHUB_LEN_PREFIX + f->hdr_len, bytes = 0;
	struct evbuffer *tmp;
	uint32_t frames = 0;
	int rc;

	if (dst->batch_rx || dst->state == CONN_DEAD) {
		bool live = dst->state != CONN_DEAD;

		/* Whole: the receiver splits it. */
		h->flags = WF_BATCH;
		h->has |= FH(WK_FLAGS);
		conn_forward(sender, f, h, dst);
		if (live)
			stats_routed_whole_batch(&b->st, f->batch);
		return 0;
	}
	tmp = evbuffer_new();
	if (!tmp)
		return -ENOMEM;
	rc = batch_split(sender->in, off, f->body_len, h, tmp, NULL, &frames,
			 &bytes);
	/* Moves tmp's chains: all the messages or none reach dst. */
	if (rc == 0 && evbuffer_add_buffer(dst->out, tmp) < 0)
		rc = -ENOMEM;
	evbuffer_free(tmp);
	if (rc < 0)
		return rc;
	if (monitor_active(b))
		batch_split(sender->in, off, f->body_len, h, NULL, dst, &frames,
			    &bytes);
	stats_routed_batch(&b->st, f->batch, bytes);
	dst->msgs_out += frames;
	f->consumed = true;
	evbuffer_drain(sender->in, IPCHUB_LEN_PREFIX + f->len);
	broker_want_flush(b, dst);
	return 0;
}
