/*
 * fed.h - the two calls ipchub-bridge needs beyond the public API
 * (internal: in the static library only, not exported by libipchub.so).
 *
 * Model: a bridge connection (HELLO flags BRIDGE, PROTOCOL.md 6.9) is an
 * ordinary blocking handle that may also put the federation keys (origin,
 * claims) on the SEND, REQUEST and REPLY frames it builds itself, and that
 * receives every answer (OK, ERROR, REPLY) through ipchub_recv() because
 * it never waits for one. The handle is not thread-safe: the caller
 * serialises every call on it.
 */
#ifndef IPCHUB_CLIENT_FED_H
#define IPCHUB_CLIENT_FED_H

#include <stddef.h>
#include <stdint.h>

#include "frame.h"
#include "ipchub.h"

/* ipchub_connect() announcing BRIDGE. Same codes; a broker that refuses
 * (not its uid nor root) closes with IPCHUB_E_NOT_AUTHORIZED. */
int fed_connect(const struct ipchub_opts *opts, ipchub **out);

/* Queue the client frame f (SEND, REQUEST or REPLY; names already
 * checked by the caller) with its body (len 0: none), giving it the next
 * id when it has none (f->id and *id_out, which may be NULL, are set),
 * and write when the queue passed its threshold. Waits for room like
 * ipchub_send(). Returns IPCHUB_OK or the codes of ipchub_send(); the
 * answer, if any, comes through ipchub_recv(). */
int fed_queue(ipchub *h, struct frame_hdr *f, const void *body, size_t len,
	      uint64_t *id_out);

#endif
