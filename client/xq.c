/*
 * xq.c - see xq.h. The FIFO is an array whose live entries are head ..
 * n - 1; it is compacted when it is full and its head has moved, and
 * doubled otherwise, so pushing is amortised O(1) and nothing moves while
 * a write is laid out.
 */
#include "xq.h"

#include <stdlib.h>
#include <string.h>

/* Entries of a fresh queue's first allocation. */
#define XQ_CAP_MIN 8u

void xq_init(struct xq *q)
{
	memset(q, 0, sizeof(*q));
}

int xq_push(struct xq *q, uint64_t pos, const void *p, size_t len,
	    ipchub_free_fn fn, void *arg)
{
	if (q->n == q->cap && q->head > 0) {
		memmove(q->v, q->v + q->head, (q->n - q->head) * sizeof(*q->v));
		q->n -= q->head;
		q->head = 0;
	}
	if (q->n == q->cap) {
		size_t cap = q->cap ? q->cap * 2 : XQ_CAP_MIN;
		struct xq_ent *v = realloc(q->v, cap * sizeof(*v));

		if (!v)
			return -1;
		q->v = v;
		q->cap = cap;
	}
	q->v[q->n++] = (struct xq_ent){ .pos = pos, .p = p, .len = len,
					.fn = fn, .arg = arg };
	q->bytes += len;
	return 0;
}

void xq_unpush(struct xq *q)
{
	if (q->n > q->head) {
		q->n--;
		q->bytes -= q->v[q->n].len;
		if (q->head == q->n)
			q->head = q->n = 0;
	}
}

bool xq_due(const struct xq *q, uint64_t done)
{
	return q->head < q->n && q->v[q->head].pos == done;
}

int xq_iov(const struct xq *q, uint64_t done, const uint8_t *out,
	   size_t out_len, struct iovec *iov, int max)
{
	uint64_t end = done + out_len;
	size_t off = 0; /* buffer bytes laid out */
	int n = 0;

	for (size_t i = q->head; i < q->n && n + 2 <= max; i++) {
		const struct xq_ent *e = &q->v[i];
		size_t seg;

		if (e->pos > end)
			break;
		seg = (size_t)(e->pos - (done + off));
		if (seg) {
			iov[n++] = (struct iovec){ (void *)(out + off), seg };
			off += seg;
		}
		iov[n++] = (struct iovec){ (void *)(e->p + e->done),
					   e->len - e->done };
	}
	if (off < out_len && n < max)
		iov[n++] = (struct iovec){ (void *)(out + off), out_len - off };
	return n;
}

static void pop(struct xq *q)
{
	struct xq_ent e = q->v[q->head++];

	if (q->head == q->n)
		q->head = q->n = 0;
	if (e.fn)
		e.fn((void *)e.p, e.arg);
}

size_t xq_advance(struct xq *q, uint64_t done, size_t n)
{
	size_t outn = 0;

	while (n > 0) {
		struct xq_ent *e = q->head < q->n ? &q->v[q->head] : NULL;
		uint64_t cur = done + outn;
		size_t take;

		if (e && e->pos == cur) {
			take = e->len - e->done < n ? e->len - e->done : n;
			e->done += take;
			q->bytes -= take;
			n -= take;
			if (e->done == e->len)
				pop(q);
			continue;
		}
		take = e && e->pos - cur < n ? (size_t)(e->pos - cur) : n;
		outn += take;
		n -= take;
	}
	return outn;
}

void xq_clear(struct xq *q)
{
	while (q->head < q->n)
		pop(q);
	free(q->v);
	xq_init(q);
}
