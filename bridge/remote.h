/*
 * remote.h - names across hubs for ipchub-bridge (docs/FEDERATION.md).
 *
 * Model: the bridge holds one bridge connection (HELLO flags BRIDGE,
 * PROTOCOL.md 6.9) to its hub. On it, it registers `name@hub` for every
 * name another hub's bridge announces as exported and present, so local
 * peers send, request and watch remote names like local ones and the
 * broker routes them to the bridge; the bridge carries SEND and REQUEST
 * to the exporting hub over NATS (subject <prefix>.n.<hub>.<name>, a reply
 * subject per request) and the answer back. Each bridge announces its own
 * exported names that are present on <prefix>.p.<hub> at every change and
 * every REMOTE_HEARTBEAT_MS; a hub not heard for REMOTE_DEAD_MS is taken
 * for gone: its names are released here and its pending requests are
 * answered PEER_GONE. Every request is answered (reply, TIMEOUT,
 * NO_SUCH_PEER, PEER_GONE, LIMIT), never left to hang.
 *
 * Threads: libnats delivers on its own threads, a service thread reads
 * the local connection and runs the timers; every use of the connection
 * and of the tables is under one lock, and whoever holds it drains what
 * the connection has received before letting go.
 */
#ifndef IPCHUB_BRIDGE_REMOTE_H
#define IPCHUB_BRIDGE_REMOTE_H

#include <stdbool.h>
#include <stdio.h>

#include <nats/nats.h>

/* Limits of the names part (one reason each). */
#define REMOTE_MAX_EXPORTS 64     /* exported local names per bridge */
#define REMOTE_MAX_HUBS 64        /* other hubs this bridge tracks */
#define REMOTE_SLOTS 4096u        /* requests in flight each way (2^n) */
#define REMOTE_HEARTBEAT_MS 250   /* presence announcement period */
#define REMOTE_DEAD_MS 3000       /* silence after which a hub is gone */
#define REMOTE_TICK_MS 50         /* timer resolution of the service thread */
#define REMOTE_NO_DEADLINE_MS 60000 /* deadline given across hubs to a
                                     * request that has none: nothing waits
                                     * forever on another machine */
#define REMOTE_GRACE_MS 500       /* after a deadline, before giving up */

struct remote_conf {
	const char *hub;     /* this hub's name (name_check_hub) */
	const char *prefix;  /* NATS subject prefix */
	const char *const *exports; /* local names to export */
	int n_exports;
	/* The NATS link is authenticated (credentials or nkey): uid/key
	 * stamped by the origin hub travel as claims, both ways. Otherwise
	 * they are neither sent nor accepted. */
	bool trusted;
	const char *socket;  /* local broker socket (NULL: default) */
};

struct remote;

/* Connect to the local hub as a bridge, watch the exported names,
 * subscribe on nc (borrowed; must outlive the remote) and start the
 * service thread. Returns 0 and *out, or -1 after logging why. */
int remote_start(const struct remote_conf *conf, natsConnection *nc,
		 struct remote **out);

/* Whether the local connection failed (the bridge should exit). */
bool remote_failed(const struct remote *r);

/* Announce this hub's names as gone, stop the thread, release and close
 * everything; NULL accepted. Call before destroying the NATS
 * connection. */
void remote_stop(struct remote *r);

/* Print the counters on one line (at exit). */
void remote_counters(const struct remote *r, FILE *f);

#endif
