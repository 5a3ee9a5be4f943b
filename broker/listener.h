/*
 * listener.h - the broker's listening endpoint on the transport (xport.h).
 *
 * Model: a struct listener owns the transport listener (the socket file
 * or pipe it created, the handle the loop watches), its accept event and
 * the EMFILE back-off timer. listener_open() resolves the path
 * (addr_resolve) and hands it to xport_listen(), which refuses to start
 * when another broker answers there and restricts access to the owner
 * (xport_unix.c: /tmp/ipchub-<uid> 0700, bind under umask 0177, chmod to
 * the configured mode; xport_win.c: a pipe DACL for the owner only). Each
 * accept callback accepts up to CONF_ACCEPT_BATCH connections with the
 * peer's credentials (read once) and hands each handle to the accept
 * function, which takes ownership of it. On EMFILE/ENFILE it logs once
 * and pauses accepting for CONF_ACCEPT_BACKOFF_MS.
 *
 * Socket activation: when conf->listen_fd is a socket inherited from the
 * service manager, the transport adopts it instead of binding (it must be
 * a listening Unix stream socket), and closing never unlinks its file:
 * the socket unit owns it.
 */
#ifndef IPCHUB_BROKER_LISTENER_H
#define IPCHUB_BROKER_LISTENER_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>

#include "conf.h"
#include "log.h"
#include "xport.h"

/* Takes ownership of fd. */
typedef void (*listener_accept_fn)(void *arg, xport_sock fd,
				   const struct xport_cred *cred);

struct listener {
	struct xport_listener x; /* owned; x.path is the resolved path */
	struct event *accept_ev; /* owned */
	struct event *backoff_ev; /* owned */
	bool backing_off;        /* accept_ev removed until backoff_ev */
	bool fd_starved;         /* EMFILE logged; cleared by an accept */
	const struct logger *log; /* borrowed */
	listener_accept_fn cb;
	void *arg;
};

/* Open and start listening. Returns 0, or a negative errno with a
 * one-line explanation in err; on failure nothing is left behind (an
 * inherited conf->listen_fd is closed). */
int listener_open(struct listener *l, struct event_base *base,
		  const struct broker_conf *conf, const struct logger *log,
		  listener_accept_fn cb, void *arg, char *err, size_t cap);

/* Stop accepting, close the socket and unlink our socket file.
 * Idempotent; accepts a listener that was never opened. */
void listener_close(struct listener *l);

#endif
