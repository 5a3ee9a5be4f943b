/*
 * svc.h - services the broker answers itself (PROTOCOL.md section 6.6).
 *
 * Model: REQUESTs addressed to a reserved name are answered at once with a
 * REPLY whose from is that name and from_id 0 (the broker): ipchub.peers
 * lists the registered names, sorted; ipchub.ping echoes the request body
 * (moved, not copied). Other reserved names are NO_SUCH_PEER. A SEND to a
 * known service is accepted and discarded (it was delivered, to the
 * broker); to an unknown reserved name it is NO_SUCH_PEER. PING frames
 * are answered with PONG. No state of its own.
 */
#ifndef IPCHUB_BROKER_SVC_H
#define IPCHUB_BROKER_SVC_H

#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "names.h"

/* A SEND or REQUEST from c addressed to a reserved name. */
void svc_frame(struct conn *c, struct conn_frame *f);

/* PING -> PONG. */
void svc_ping(struct conn *c, struct conn_frame *f);

/* Encode the ipchub.peers body for table t into a new buffer of at most
 * max_body bytes (entries that do not fit are left out). Returns the
 * buffer (caller frees) and its length in *len, or NULL on ENOMEM. The
 * entries' owners must be struct conn. */
uint8_t *svc_peers_body(const struct names *t, size_t max_body, size_t *len);

#endif
