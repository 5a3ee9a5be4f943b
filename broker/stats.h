/*
 * stats.h - the broker's counters and the ipchub.stats service
 * (PROTOCOL.md section 10.5).
 *
 * Model: struct stats lives in struct broker and holds the totals that do
 * not belong to a live connection: connections accepted, messages and
 * bytes routed between clients (SEND, REQUEST, REPLY, each PUBLISH
 * delivery, each message of a batch) and batched SEND frames, drops,
 * ERROR frames sent by code, and the in/out counters of connections
 * already closed (so totals = closed + live). Per-connection
 * counters stay in struct conn. Counting is a few increments on paths
 * that already touch the same cache lines; nothing is allocated until
 * stats are requested, and the reply is built into one buffer bounded by
 * max_frame (connections that do not fit are left out and the reply says
 * "truncated": true).
 */
#ifndef IPCHUB_BROKER_STATS_H
#define IPCHUB_BROKER_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

struct conn;
struct conn_frame;
struct broker;

struct stats {
	uint64_t started_ms;
	uint64_t conns_total;
	uint64_t routed_msgs, routed_bytes;
	uint64_t routed_batches;
	uint64_t copied_bytes; /* large bodies' bytes copied, not moved */
	uint64_t drops;
	uint64_t fds_in_flight; /* descriptors the broker holds now */
	uint64_t fds_passed;    /* descriptors written to receivers */
	uint64_t fds_refused;   /* descriptors closed undelivered */
	uint64_t memfd_inlined; /* memfd bodies delivered inline (6.10) */
	uint64_t errors[WIRE_E_CODE_MAX_];
	uint64_t closed_msgs_in, closed_bytes_in;
	uint64_t closed_msgs_out, closed_bytes_out;
};

void stats_init(struct stats *s, uint64_t now_ms);

static inline void stats_routed(struct stats *s, uint64_t bytes)
{
	s->routed_msgs++;
	s->routed_bytes += bytes;
}

/* n messages of bytes in all were delivered as one frame (a batched
 * PUBLISH to one subscriber), or n = 1 for one publication. */
static inline void stats_routed_n(struct stats *s, uint32_t n, uint64_t bytes)
{
	s->routed_msgs += n;
	s->routed_bytes += bytes;
}

/* A batched SEND frame of n messages was routed, split into n frames of
 * bytes in all. */
static inline void stats_routed_batch(struct stats *s, uint32_t n,
				      uint64_t bytes)
{
	s->routed_msgs += n;
	s->routed_batches++;
	s->routed_bytes += bytes;
}

/* ... or forwarded whole, which conn_forward() counted as one message
 * with its bytes: add the other n - 1 messages and the batch. */
static inline void stats_routed_whole_batch(struct stats *s, uint32_t n)
{
	s->routed_msgs += n - 1;
	s->routed_batches++;
}

static inline void stats_error(struct stats *s, int code)
{
	if (code > 0 && code < WIRE_E_CODE_MAX_)
		s->errors[code]++;
}

/* Fold a closing connection's counters into the totals (at kill). */
void stats_conn_closed(struct stats *s, const struct conn *c);

/* Encode the ipchub.stats reply body (a msgpack map) for broker b into a
 * new buffer of at most max_body bytes. Returns it (caller frees) with
 * its length in *len, or NULL when out of memory. */
uint8_t *stats_body(struct broker *b, size_t max_body, size_t *len);

/* Answer a REQUEST to ipchub.stats. */
void stats_reply(struct conn *c, struct conn_frame *f);

#endif
