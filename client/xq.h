/*
 * xq.h - bodies written from the caller's memory (ipchub_send_buf();
 * internal).
 *
 * Model: a handle's output stream is its session's outbound buffer with
 * caller-owned bodies spliced in. Each entry of the FIFO is one body that
 * goes right after the outbound byte at absolute offset pos, where
 * offsets count the outbound buffer's bytes only (the handle's out_done
 * counts those written; bodies are never counted in it, so descriptor
 * positions, which use the same offsets, are unaffected). The frame's
 * header, whose length prefix includes the body, is the last buffer byte
 * before pos. xq_iov() lays out the next write, buffer bytes and bodies in
 * stream order, as iovecs for one writev/sendmsg; xq_advance() accounts
 * for a write of n bytes of that layout and calls each body's free
 * callback once its last byte is written. Ownership: from a successful
 * xq_push() the queue owns the body (the caller must neither change nor
 * free it) until its callback; xq_clear() calls the callbacks of the
 * bodies left (the handle is closing). Entries are pushed in stream
 * order, at most one per offset (each follows its own header).
 */
#ifndef IPCHUB_CLIENT_XQ_H
#define IPCHUB_CLIENT_XQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "ipchub.h"

/* iovecs of one write: enough for a few dozen bodies and the headers
 * between them; a longer run is written over several calls. */
#define XQ_IOV_MAX 64

struct xq_ent {
	uint64_t pos;       /* the body follows buffer offset pos - 1 */
	const uint8_t *p;   /* borrowed from the caller until fn */
	size_t len, done;   /* body bytes, of which written */
	ipchub_free_fn fn;  /* may be NULL */
	void *arg;
};

struct xq {
	struct xq_ent *v; /* owned; entries head .. n - 1 are live */
	size_t head, n, cap;
	uint64_t bytes;   /* body bytes not yet written */
};

void xq_init(struct xq *q);

/* Append a body of len (> 0) bytes at offset pos. Returns 0 or -1 (out of
 * memory: the queue is unchanged and the body still the caller's). */
int xq_push(struct xq *q, uint64_t pos, const void *p, size_t len,
	    ipchub_free_fn fn, void *arg);

/* Take back the entry just pushed (nothing was written since), without
 * calling its callback: the body is the caller's again. */
void xq_unpush(struct xq *q);

/* Whether the next byte to write (buffer offset done) is a body's. */
bool xq_due(const struct xq *q, uint64_t done);

/* Lay out a write of the out_len buffer bytes at out (offsets done ..
 * done + out_len) and the bodies that come before, between and right
 * after them, into at most max (>= 2) iovecs. Returns the count. */
int xq_iov(const struct xq *q, uint64_t done, const uint8_t *out,
	   size_t out_len, struct iovec *iov, int max);

/* n bytes of a write laid out by xq_iov(q, done, ...) went out: advance
 * the bodies among them (calling the callbacks of finished ones) and
 * return how many were buffer bytes. */
size_t xq_advance(struct xq *q, uint64_t done, size_t n);

/* Call every remaining body's callback and free the queue. */
void xq_clear(struct xq *q);

#endif
