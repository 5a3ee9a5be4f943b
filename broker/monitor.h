/*
 * monitor.h - taps on the broker's traffic (PROTOCOL.md section 10.4).
 *
 * Model: a tap (struct mon_tap) belongs to one connection (conn->taps)
 * and to the broker's list of taps. conn.c and pubsub.c call
 * monitor_tap() for every frame the broker reads from a client ("in",
 * after the header is decoded and the body validated) and every frame it
 * queues to a client ("out"), while any tap exists (monitor_active() is
 * one load and compare, so the cost without monitors is nil). Frames of
 * connections that hold a tap are never tapped, so monitors cannot feed
 * each other. Each tap's filter (parsed once at MONITOR into a fixed
 * struct) selects frames by direction, kind, connection id, name and
 * topic pattern.
 *
 * A copy is a MONITOR frame {sub, conn, event: direction} whose body is a
 * msgpack bin holding the tapped frame's bytes after its length prefix;
 * a frame too large to fit whole in a copy is cut to its header and the
 * copy carries count = its real length. Copies go straight into the
 * monitor's output while it is under the high-water mark; beyond it they
 * are dropped and counted, and a GAP {sub, count} precedes the next copy
 * that fits, so a slow monitor never slows the traffic it watches and is
 * still told what it missed.
 *
 * Authorization: monitor_allowed() is the single policy point.
 */
#ifndef IPCHUB_BROKER_MONITOR_H
#define IPCHUB_BROKER_MONITOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include <event2/buffer.h>

#include "conn.h"
#include "limits.h"

struct mon_filter {
	uint8_t dirs;                 /* bit WIRE_MONITOR_IN/OUT; 0 = both */
	uint64_t kinds;               /* bit per kind; 0 = all */
	uint8_t nconn, nname, ntopic;
	uint64_t conn[IPCHUB_MAX_FILTER_TERMS];
	/* name and topic terms: (offset, length) into the tap's text */
	uint16_t name_off[IPCHUB_MAX_FILTER_TERMS], name_len[IPCHUB_MAX_FILTER_TERMS];
	uint16_t topic_off[IPCHUB_MAX_FILTER_TERMS], topic_len[IPCHUB_MAX_FILTER_TERMS];
};

struct mon_tap {
	struct conn *c;             /* the monitor */
	uint64_t id;                /* the MONITOR's id */
	uint64_t gap;               /* copies dropped since the last one sent */
	uint64_t sent, drops;
	TAILQ_ENTRY(mon_tap) by_conn;
	TAILQ_ENTRY(mon_tap) all;
	struct mon_filter f;
	char text[IPCHUB_MAX_FILTER + 1];
};

struct monitor {
	TAILQ_HEAD(, mon_tap) taps;
	uint32_t ntaps;
};

void monitor_init(struct monitor *m);

/* Whether c may tap traffic: root, the broker's own uid. The
 * authentication policy extends this function (one place). */
bool monitor_allowed(const struct conn *c);

/* MONITOR {id, filter?}: OK, or ERROR NOT_AUTHORIZED / BAD_FILTER /
 * LIMIT (PROTOCOL if the id is in use). */
void monitor_start(struct conn *c, struct conn_frame *f);

/* UNSUBSCRIBE of a tap id: returns whether c had one (now removed). */
bool monitor_untap(struct conn *c, uint64_t id);

/* Whether c has a tap with this id. */
bool monitor_find(const struct conn *c, uint64_t id);

/* c is detaching: drop its taps. */
void monitor_conn_gone(struct conn *c);

/* Parse filter text into *f. Returns WIRE_E_OK, or WIRE_E_BAD_FILTER
 * with *why set to a static explanation. */
int monitor_filter_parse(const char *text, size_t len, struct mon_filter *f,
			 const char **why);

/* Copy a frame to every tap whose filter selects it. c is the client the
 * frame came from (dir WIRE_MONITOR_IN) or goes to (WIRE_MONITOR_OUT); h
 * its decoded header; the frame's bytes (after the length prefix) are
 * hdr[0..hlen) followed by blen body bytes, taken from bsrc at offset
 * boff when bsrc is not NULL, else from body. */
void monitor_tap(struct conn *c, int dir, const struct frame_hdr *h,
		 const void *hdr, size_t hlen, struct evbuffer *bsrc,
		 size_t boff, const void *body, size_t blen);

struct broker;
static inline bool monitor_active_(const struct monitor *m)
{
	return m->ntaps > 0;
}
#define monitor_active(b) monitor_active_(&(b)->mon)

#endif
