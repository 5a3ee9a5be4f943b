/*
 * batch.h - batched SENDs and PUBLISHes in the client session
 * (PROTOCOL.md 6.3.1, 10.2.1; internal).
 *
 * Model, outbound: the session's outbound buffer may end with one open
 * SEND or PUBLISH frame (sess.out.open bytes long, described by sess.ob)
 * that still accepts messages. A one-way send to the same name (a
 * publication to the same topic), with the same flags and the next id, is
 * appended to it instead of getting its own frame: the
 * first message is a plain SEND; the second rewrites it in place as a
 * batch (header with flags BATCH, body an `array 32` of the bodies); each
 * later one appends its body and patches the array count and the length
 * prefix. The frame closes - it stays in the buffer, unchanged - when any
 * other frame is queued after it (every sess_buf_encode/sess_buf_append
 * clears `open`), when a byte of it is handed to the socket
 * (sess_out_consume), or when it reaches a limit. Only bytes already
 * waiting are merged: flushing is unchanged, so batching never delays a
 * message. SEND frames are only opened after a WELCOME with BATCH,
 * PUBLISH frames after one with PUB_BATCH too (only the blocking API
 * batches publications; the event API's queue batches SENDs only).
 *
 * Model, inbound: sess_next_event() splits a batched SEND or PUBLISH
 * into one
 * SESS_EV_MSG per element and an ERROR with `count` n into n
 * SESS_EV_ERROR events; the cursor (sess.split) holds offsets relative to
 * the frame start, so it survives the inbound buffer being compacted or
 * reallocated between calls, and the frame is consumed after its last
 * element. An element lent in place (lend.h) points into the frame, which
 * then stays buffered until the loan ends (sess.lend.consume).
 *
 * batch_iter walks the elements of a batch frame this library wrote, so
 * the event API can re-encode queued batches as single SENDs when its
 * connection is lost (the next broker may not accept batches).
 */
#ifndef IPCHUB_CLIENT_BATCH_H
#define IPCHUB_CLIENT_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frame.h"
#include "sess.h"

/* Bytes the outbound buffer would grow by if a message of kind
 * (WIRE_SEND or WIRE_PUBLISH) to to[0..to_len) (the name or the topic)
 * with these flags, this id and a body of len bytes were appended to the
 * open batch; 0 when it cannot be (no open frame, another kind, name, flags or
 * id, no body or one over IPCHUB_CLIENT_BATCH_BODY_MAX, or a limit
 * reached). */
size_t sess_batch_cost(const struct sess *s, int kind, const char *to,
		       size_t to_len, uint32_t flags, uint64_t id, size_t len);

/* Append a body to the open frame; add is what sess_batch_cost() returned
 * (non-zero) for this message, nothing having been queued since. Returns
 * IPCHUB_OK or IPCHUB_E_NOMEM (the frame is unchanged then). */
int sess_batch_add(struct sess *s, size_t add, const void *body,
		   size_t len);

/* Whether the NUL-terminated name is the destination (topic) of the
 * open batch, which is of this kind; its
 * length goes to *len then. That name passed the name check when the
 * batch was opened, so a caller may skip checking it again. */
bool sess_batch_to_is(const struct sess *s, int kind, const char *name,
		      size_t *len);

/* Queue a one-way SEND or PUBLISH: appended to the open batch when it can be, else
 * queued as its own frame (sess_queue_frame), which then becomes the open
 * frame if it may take more. Return codes as sess_queue_frame(). */
int sess_queue_send(struct sess *s, const struct frame_hdr *h,
		    const void *body, size_t len);

/* After the SEND or PUBLISH h with a body of len bytes was queued as the last
 * frame_bytes bytes of the outbound buffer: make it the open frame if
 * it qualifies. */
void sess_batch_open(struct sess *s, const struct frame_hdr *h, size_t len,
		     size_t frame_bytes);

/* Inbound: produce the next element of the frame being split (sess.split
 * active). Returns IPCHUB_OK with *ev set, or IPCHUB_E_NOMEM (nothing
 * consumed; retry). */
int sess_split_next(struct sess *s, struct sess_event *ev);

/* Walk the messages of one client SEND frame (prefix included) that this
 * library encoded: a batch yields each element, a plain SEND its body
 * once. h receives the frame's header with BATCH cleared, so that
 * h + (id + i) re-encodes message i as a single SEND. */
struct batch_iter {
	struct frame_hdr h;
	struct iovec iov;
	struct mpr r;
	uint64_t id0;
	uint32_t n, i;
	bool batch;
};

/* Returns IPCHUB_OK or IPCHUB_E_BAD_FRAME (not a valid SEND frame). */
int batch_iter_init(struct batch_iter *it, const uint8_t *frame, size_t len);
/* Next message: true with it->h.id set to its id and its body in
 * (*body, *len); false after the last. */
bool batch_iter_next(struct batch_iter *it, const uint8_t **body,
		     size_t *len);

#endif
