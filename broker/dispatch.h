/*
 * dispatch.h - what the broker does with each decoded client frame.
 *
 * Model: dispatch_frame() is called by the connection's frame loop with a
 * complete, decoded and (if it has a body) validated frame still in the
 * sender's input. It enforces the connection state machine (HELLO first
 * and only once), answers the connection-level kinds itself (HELLO ->
 * WELCOME, PING -> PONG, REGISTER/UNREGISTER -> OK/ERROR, BYE) and hands
 * SEND/REQUEST/REPLY/CANCEL to route.c. On return the frame is either
 * consumed (f->consumed), parked (f->parked) or still to be drained by
 * the caller; the connection may have been closed (check its state).
 */
#ifndef IPCHUB_BROKER_DISPATCH_H
#define IPCHUB_BROKER_DISPATCH_H

#include "conn.h"

void dispatch_frame(struct conn *c, struct conn_frame *f);

#endif
