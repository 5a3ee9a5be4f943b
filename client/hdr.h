/*
 * hdr.h - argument checks and header building shared by the blocking API
 * (ipchub.c) and the event-driven API (async.c) (internal).
 *
 * Model: pure functions over caller memory; no allocation, no state. They
 * turn what an application passes in (names, bodies, a request to answer)
 * into validated header fields, so both APIs refuse the same inputs with
 * the same codes.
 */
#ifndef IPCHUB_CLIENT_HDR_H
#define IPCHUB_CLIENT_HDR_H

#include <stddef.h>
#include <stdint.h>

#include "frame.h"
#include "ipchub.h"

/* A destination or registered name: IPCHUB_E_INVALID for NULL,
 * IPCHUB_E_BAD_NAME for one that breaks the grammar; *len its length. */
int hdr_check_name(const char *name, size_t *len);

/* The same for an address (a name or a remote `name@hub`, name.h):
 * destinations, registered and watched names. */
int hdr_check_addr(const char *name, size_t *len);

/* A body is absent (len 0) or exactly one msgpack value of at most
 * max_frame bytes: IPCHUB_E_INVALID (NULL with len > 0),
 * IPCHUB_E_TOO_LARGE, IPCHUB_E_BAD_BODY. */
int hdr_check_body(uint32_t max_frame, const void *body, size_t len);

/* Fill f with the REPLY header answering req (a REQUEST message), with an
 * error code (0: none) and text (NULL: none; truncated to
 * IPCHUB_MAX_ERRMSG at a UTF-8 boundary). IPCHUB_E_INVALID if req is not
 * a request. */
int hdr_reply(struct frame_hdr *f, const ipchub_msg *req, int code,
	      const char *text);

#endif
