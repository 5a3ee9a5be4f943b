/*
 * route.h - directed messages between connections (PROTOCOL.md section 6):
 * SEND, REQUEST, REPLY and CANCEL, and the pending-request bookkeeping
 * around them.
 *
 * Model: routing reads the sender's decoded header, finds the receiver
 * (the name table for SEND/REQUEST, the pending table for REPLY), applies
 * backpressure (park the sender, or QUEUE_FULL with NOWAIT), stamps
 * from/from_id/uid onto the header in place and forwards the frame with
 * conn_forward() (header re-encoded on the stack, body bytes moved). Every
 * failure is answered to the sender with its id; nothing is dropped
 * silently. Requests to reserved names go to svc.c. A forwarded REQUEST
 * creates a pending entry (requester, id) -> responder, with a timer when
 * it has a timeout; exactly one answer reaches the requester: the REPLY,
 * or ERROR TIMEOUT / PEER_GONE / CANCELLED.
 */
#ifndef IPCHUB_BROKER_ROUTE_H
#define IPCHUB_BROKER_ROUTE_H

#include "conn.h"
#include "pending.h"

void route_send(struct conn *c, struct conn_frame *f);
void route_request(struct conn *c, struct conn_frame *f);
void route_reply(struct conn *c, struct conn_frame *f);
void route_cancel(struct conn *c, struct conn_frame *f);

/* pending_table expiry callback (arg = struct broker *): answers the
 * requester with ERROR TIMEOUT. */
void route_on_expire(void *arg, struct pending *p);

#endif
