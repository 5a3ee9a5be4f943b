/*
 * fdq.h - a FIFO of file descriptors, shared by the broker and the client
 * library. The socket calls that move descriptors (sendmsg/recvmsg with
 * SCM_RIGHTS) belong to the transport: xport_send/xport_recv
 * (xport/xport_unix.c).
 *
 * Model: a queue owns every descriptor in it (fdq_clear closes them). It
 * holds descriptors in arrival order and, optionally, groups: runs of
 * descriptors pushed together with a stream position (the absolute offset
 * of the first byte of the frame they travel with). The receive side uses
 * the FIFO only (frames claim descriptors in order, PROTOCOL.md 6.6); the
 * send side uses groups to attach each frame's descriptors to the
 * sendmsg() that starts at the frame's first byte.
 */
#ifndef IPCHUB_PROTO_FDQ_H
#define IPCHUB_PROTO_FDQ_H

#include <stdbool.h>
#include <stdint.h>

struct fdq_group {
	uint64_t pos; /* stream offset of the frame's first byte */
	uint32_t n;   /* descriptors of the group (1..IPCHUB_MAX_FDS_PER_FRAME) */
	uint64_t bytes; /* memory its descriptors stand for (a memfd body's
	                 * length, PROTOCOL.md 6.9), for queue accounting;
	                 * 0 unless fdq_set_bytes() said otherwise */
};

struct fdq {
	int *fd;                 /* ring of cap descriptors, owned */
	uint32_t cap, head, n;
	struct fdq_group *g;     /* ring of gcap groups */
	uint32_t gcap, ghead, gn;
};

void fdq_init(struct fdq *q);

/* Close every descriptor, free the storage; returns how many were closed.
 * The queue is empty and reusable afterwards. */
uint32_t fdq_clear(struct fdq *q);

static inline uint32_t fdq_len(const struct fdq *q) { return q->n; }

/* Make room for n more descriptors (and one group): 0, or -1 (ENOMEM,
 * queue unchanged). */
int fdq_reserve(struct fdq *q, uint32_t n);

/* Append n descriptors; the queue owns them from now on. With group set,
 * they form one group at stream position pos. Returns 0, or -1 (ENOMEM:
 * the caller still owns them, queue unchanged). */
int fdq_push(struct fdq *q, const int *fds, uint32_t n, bool group,
	     uint64_t pos);

/* Set the bytes of the newest group (there must be one). */
void fdq_set_bytes(struct fdq *q, uint64_t bytes);

/* Remove the first n (<= fdq_len) descriptors into out (the caller owns
 * them then); groups they completed are removed. */
void fdq_take(struct fdq *q, int *out, uint32_t n);

/* The same, closing them. */
void fdq_drop(struct fdq *q, uint32_t n);

/* Copy (without removing) the first n (<= fdq_len) descriptors to out. */
void fdq_peek(const struct fdq *q, int *out, uint32_t n);

/* Group i (0 = oldest) into *g: true, or false if there are not i + 1. */
bool fdq_group(const struct fdq *q, uint32_t i, struct fdq_group *g);

#endif
