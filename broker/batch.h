/*
 * batch.h - delivery of batched SENDs (PROTOCOL.md section 6.3.1).
 *
 * Model: conn.c checks a batch's body once, when the frame is first read
 * (frame_batch_check), and records its message count in conn_frame.batch
 * (0 for every other frame); route.c makes one decision for the whole
 * frame (destination, backpressure, NOWAIT), stamps its header once and
 * hands it to batch_forward(). A receiver whose HELLO carried BATCH
 * (conn.batch_rx) gets the frame whole, body bytes untouched, through
 * conn_forward() and its fast paths, with flags BATCH (never NOWAIT). Any
 * other receiver gets one SEND per message - id + i, no flags, the same
 * stamps, in order - built by batch_split(), which walks the body where it
 * lies in the sender's input (the mpr reader over evbuffer_peek() iovecs,
 * so chain boundaries may fall anywhere, even inside an element's
 * header). The split frames are built in a private evbuffer and moved to
 * the receiver's output only once all of them were built: a receiver gets
 * every message of a batch or none (then the sender is told, with the
 * batch's count). Nothing here keeps memory beyond one call.
 *
 * Bound: splitting a batch of n messages queues its body bytes (less the
 * array header) plus n delivered headers with their length prefixes, so
 * one batch frame may grow by at most IPCHUB_MAX_BATCH times the stamped
 * header (a few hundred bytes at most). Backpressure counts what is
 * actually queued, as for any frame, after the whole-frame decision.
 */
#ifndef IPCHUB_BROKER_BATCH_H
#define IPCHUB_BROKER_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>

#include "conn.h"
#include "frame.h"

/* Deliver the checked batch frame f (f->batch messages) from sender to dst
 * with the stamped header h (WK_FLAGS clear), consuming f from sender's
 * input, and count it in the broker's stats. Returns 0, or -ENOMEM when
 * the split frames could not be built (-EINVAL if the body is not a valid
 * batch, which a checked body never is): then nothing was queued to dst,
 * f is left in the input, and the caller answers the sender. */
int batch_forward(struct conn *sender, struct conn_frame *f,
		  struct frame_hdr *h, struct conn *dst);

/* Split the checked batch body of len bytes at offset off of src into
 * SEND frames: header h (WK_FLAGS clear) with id h->id + i for message i
 * and that message's bytes as body. With out, the frames are appended to
 * out; with tap, each is also copied to the monitors as written to tap
 * (monitor_tap). src is not changed; h is as it was on return. On success
 * *frames and *bytes are the frames and bytes (length prefixes included)
 * built. Returns 0, -EINVAL when the body is not a valid batch (callers
 * check it first) or -ENOMEM; on failure out may hold part of the frames
 * (pass a private buffer) and *frames and *bytes are untouched. */
int batch_split(struct evbuffer *src, size_t off, size_t len,
		struct frame_hdr *h, struct evbuffer *out, struct conn *tap,
		uint32_t *frames, size_t *bytes);

#endif
