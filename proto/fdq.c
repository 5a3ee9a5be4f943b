/*
 * fdq.c - see fdq.h. The rings grow by doubling; callers bound them (the
 * broker's --max-fds-* quotas, the client's per-connection limit).
 */
#include "fdq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "limits.h"

void fdq_init(struct fdq *q)
{
	memset(q, 0, sizeof(*q));
}

uint32_t fdq_clear(struct fdq *q)
{
	uint32_t n = q->n;

	for (uint32_t i = 0; i < q->n; i++)
		close(q->fd[(q->head + i) % q->cap]);
	free(q->fd);
	free(q->g);
	fdq_init(q);
	return n;
}

/* Grow a ring of *cap elements of size sz holding n from head to at least
 * want, unrolled to start at 0. */
static int ring_grow(void **v, uint32_t *cap, uint32_t *head, uint32_t n,
		     uint32_t want, size_t sz)
{
	uint32_t ncap = *cap ? *cap : 8;
	uint8_t *nv;

	if (want <= *cap)
		return 0;
	while (ncap < want) {
		if (ncap > UINT32_MAX / 2) {
			errno = ENOMEM;
			return -1;
		}
		ncap *= 2;
	}
	nv = malloc((size_t)ncap * sz);
	if (!nv)
		return -1;
	for (uint32_t i = 0; i < n; i++)
		memcpy(nv + i * sz, (uint8_t *)*v + ((*head + i) % *cap) * sz,
		       sz);
	free(*v);
	*v = nv;
	*cap = ncap;
	*head = 0;
	return 0;
}

int fdq_reserve(struct fdq *q, uint32_t n)
{
	if (n > UINT32_MAX - q->n) {
		errno = ENOMEM;
		return -1;
	}
	if (ring_grow((void **)&q->fd, &q->cap, &q->head, q->n, q->n + n,
		      sizeof(int)) < 0)
		return -1;
	return ring_grow((void **)&q->g, &q->gcap, &q->ghead, q->gn, q->gn + 1,
			 sizeof(struct fdq_group));
}

int fdq_push(struct fdq *q, const int *fds, uint32_t n, bool group,
	     uint64_t pos)
{
	if (fdq_reserve(q, n) < 0)
		return -1;
	for (uint32_t i = 0; i < n; i++)
		q->fd[(q->head + q->n + i) % q->cap] = fds[i];
	q->n += n;
	if (group) {
		struct fdq_group *g = &q->g[(q->ghead + q->gn) % q->gcap];

		g->pos = pos;
		g->n = n;
		g->bytes = 0;
		q->gn++;
	}
	return 0;
}

void fdq_set_bytes(struct fdq *q, uint64_t bytes)
{
	q->g[(q->ghead + q->gn - 1) % q->gcap].bytes = bytes;
}

void fdq_peek(const struct fdq *q, int *out, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		out[i] = q->fd[(q->head + i) % q->cap];
}

void fdq_take(struct fdq *q, int *out, uint32_t n)
{
	uint32_t left = n;

	if (out)
		fdq_peek(q, out, n);
	q->head = q->cap ? (q->head + n) % q->cap : 0;
	q->n -= n;
	while (left && q->gn) {
		struct fdq_group *g = &q->g[q->ghead];
		uint32_t k = g->n < left ? g->n : left;

		g->n -= k;
		left -= k;
		if (g->n == 0) {
			q->ghead = (q->ghead + 1) % q->gcap;
			q->gn--;
		}
	}
}

void fdq_drop(struct fdq *q, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		close(q->fd[(q->head + i) % q->cap]);
	fdq_take(q, NULL, n);
}

bool fdq_group(const struct fdq *q, uint32_t i, struct fdq_group *g)
{
	if (i >= q->gn)
		return false;
	*g = q->g[(q->ghead + i) % q->gcap];
	return true;
}
