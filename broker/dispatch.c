/*
 * dispatch.c - see dispatch.h. Non-fatal failures are logged at debug
 * only (they can happen once per message); fatal ones go through
 * conn_fail(), which logs a warning naming the peer.
 */
#include "dispatch.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "log.h"
#include "name.h"
#include "monitor.h"
#include "presence.h"
#include "pubsub.h"
#include "route.h"
#include "svc.h"

static void reply_ok(struct conn *c, uint64_t id)
{
	struct frame_hdr h;

	frame_init(&h, WIRE_OK);
	h.id = id;
	h.has |= FH(WK_ID);
	conn_send_hdr(c, &h);
}

static void on_hello(struct conn *c, const struct conn_frame *f)
{
	struct broker *b = c->b;
	const struct frame_hdr *h = &f->h;
	uint32_t lo = h->ver_min > IPCHUB_PROTO_VERSION_MIN ? h->ver_min
							    : IPCHUB_PROTO_VERSION_MIN;
	uint32_t hi = h->ver < IPCHUB_PROTO_VERSION_MAX ? h->ver
							: IPCHUB_PROTO_VERSION_MAX;
	struct frame_hdr w;
	char d[384];

	if (lo > hi) {
		conn_fail(c, WIRE_E_UNSUPPORTED_VERSION, WIRE_HELLO, 0,
			  "client speaks versions %u..%u; this broker speaks %u..%u",
			  h->ver_min, h->ver, IPCHUB_PROTO_VERSION_MIN,
			  IPCHUB_PROTO_VERSION_MAX);
		return;
	}
	if (h->has & FH(WK_AGENT)) {
		memcpy(c->agent, h->agent, h->agent_len);
		c->agent[h->agent_len] = '\0';
	}
	c->batch_rx = (h->flags & WF_BATCH) != 0; /* 0 when absent */
	/* Only where the transport carries them (not Windows pipes). */
	c->fds_rx = (h->flags & WF_FDS) != 0 && xport_passes_fds();
	c->memfd_rx = c->fds_rx && (h->flags & WF_MEMFD); /* frame.c: implies FDS */
	c->pub_batch_rx = (h->flags & WF_PUB_BATCH) != 0;
	if ((h->flags & WF_BRIDGE) && c->cred.uid != 0 &&
	    c->cred.uid != xport_self_uid()) {
		conn_fail(c, WIRE_E_NOT_AUTHORIZED, WIRE_HELLO, 0,
			  "only the broker's uid or root may be a bridge");
		return;
	}
	c->bridge = (h->flags & WF_BRIDGE) != 0;
	frame_init(&w, WIRE_WELCOME);
	w.ver = hi;
	w.conn = c->id;
	w.max_frame = b->conf.max_frame;
	/* Batched SENDs accepted (PROTOCOL.md 6.3.1); batched PUBLISHes
	 * (10.2.1), FDS (6.8), MEMFD (6.10) and BRIDGE said only to a client
	 * that announced them: older clients refuse WELCOME flags they do not
	 * know. */
	w.flags = WF_BATCH | (c->pub_batch_rx ? WF_PUB_BATCH : 0) |
		  (c->fds_rx ? WF_FDS : 0) | (c->memfd_rx ? WF_MEMFD : 0) |
		  (c->bridge ? WF_BRIDGE : 0);
	w.has |= FH(WK_VER) | FH(WK_CONN) | FH(WK_MAX_FRAME) | FH(WK_FLAGS);
	frame_set_str(&w, WK_BROKER, b->id_hex, strlen(b->id_hex));
	auth_welcome(c, &w);
	conn_send_hdr(c, &w);
	c->state = CONN_READY;
	if (!auth_in_handshake(&c->auth))
		evtimer_del(c->timer_ev);
	log_info(&b->log, "%s ready: protocol %u, agent \"%s\"",
		 conn_desc(c, d, sizeof(d)), hi, c->agent);
}

static void on_register(struct conn *c, const struct conn_frame *f)
{
	struct broker *b = c->b;
	const struct frame_hdr *h = &f->h;
	bool fresh = names_lookup(&b->names, h->name, h->name_len) != c;
	int rc = name_check_addr(h->name, h->name_len);
	bool remote = rc == WIRE_E_OK && name_is_remote(h->name, h->name_len);
	char d[384];

	if (rc == WIRE_E_OK && name_is_reserved(h->name, h->name_len))
		rc = WIRE_E_BAD_NAME;
	/* Remote names (`name@hub`) stand for peers of other hubs: only a
	 * bridge connection (HELLO flags BRIDGE, the broker's own uid or
	 * root) holds them, and the policy's name rules do not apply. */
	if (rc == WIRE_E_OK && remote && !c->bridge)
		rc = WIRE_E_NOT_AUTHORIZED;
	if (rc == WIRE_E_OK && !remote)
		rc = auth_may_register(c, h->name, h->name_len);
	if (rc == WIRE_E_OK)
		rc = names_register(&b->names, &c->names, c, h->name,
				    h->name_len,
				    c->bridge ? IPCHUB_MAX_BRIDGE_NAMES
					      : b->conf.max_names);

	if (rc == WIRE_E_OK) {
		reply_ok(c, h->id);
		if (fresh)
			presence_notify(b, h->name, h->name_len, c,
					WIRE_PRESENCE_REGISTERED, 0);
		log_debug(&b->log, "%s registered %s", conn_desc(c, d, sizeof(d)),
			  h->name);
		return;
	}
	if (rc < 0)
		rc = WIRE_E_INTERNAL;
	log_debug(&b->log, "%s: REGISTER %s: %s", conn_desc(c, d, sizeof(d)),
		  h->name, frame_code_name(rc));
	conn_send_error(c, h->id, rc, WIRE_REGISTER, NULL, 0, h->name,
			h->name_len, NULL);
}

static void on_unregister(struct conn *c, const struct conn_frame *f)
{
	struct broker *b = c->b;
	const struct frame_hdr *h = &f->h;
	int rc = names_unregister(&b->names, &c->names, c, h->name,
				  h->name_len);
	char d[384];

	if (rc == WIRE_E_OK) {
		reply_ok(c, h->id);
		presence_notify(b, h->name, h->name_len, c,
				WIRE_PRESENCE_RELEASED, WIRE_REASON_UNREGISTER);
		/* Senders parked on c for this name retry: the name may
		 * now belong to someone else, or to nobody. */
		conn_wake_blocked(c);
		return;
	}
	log_debug(&b->log, "%s: UNREGISTER %s: %s", conn_desc(c, d, sizeof(d)),
		  h->name, frame_code_name(rc));
	conn_send_error(c, h->id, rc, WIRE_UNREGISTER, NULL, 0, h->name,
			h->name_len, NULL);
}

void dispatch_frame(struct conn *c, struct conn_frame *f)
{
	int kind = f->h.kind;

	if (c->state == CONN_AWAIT_HELLO) {
		if (kind == WIRE_HELLO)
			on_hello(c, f);
		else
			conn_fail(c, WIRE_E_PROTOCOL, kind, 0,
				  "%s before HELLO", frame_kind_name(kind));
		return;
	}
	if (!auth_filter(c, f))
		return;
	switch (kind) {
	case WIRE_HELLO:
		conn_fail(c, WIRE_E_PROTOCOL, kind, 0, "second HELLO");
		break;
	case WIRE_BYE:
		conn_close(c, "BYE from client");
		break;
	case WIRE_PING:
		svc_ping(c, f);
		break;
	case WIRE_REGISTER:
		on_register(c, f);
		break;
	case WIRE_UNREGISTER:
		on_unregister(c, f);
		break;
	case WIRE_SEND:
		route_send(c, f);
		break;
	case WIRE_REQUEST:
		route_request(c, f);
		break;
	case WIRE_REPLY:
		route_reply(c, f);
		break;
	case WIRE_CANCEL:
		route_cancel(c, f);
		break;
	case WIRE_SUBSCRIBE:
		pubsub_subscribe(c, f);
		break;
	case WIRE_UNSUBSCRIBE:
		pubsub_unsubscribe(c, f);
		break;
	case WIRE_PUBLISH:
		pubsub_publish(c, f);
		break;
	case WIRE_WATCH:
		presence_watch(c, f);
		break;
	case WIRE_UNWATCH:
		presence_unwatch(c, f);
		break;
	case WIRE_MONITOR:
		monitor_start(c, f);
		break;
	default:
		conn_fail(c, WIRE_E_BAD_FRAME, kind, 0, "unexpected frame kind %s",
			  frame_kind_name(kind));
		break;
	}
}
