/*
 * listener.h - the broker's listening Unix socket.
 *
 * Model: a struct listener owns the listening fd, its accept event and
 * the EMFILE back-off timer, and (for a filesystem path) the socket file
 * it created, identified by device and inode so that shutdown unlinks
 * only our own file. listener_open() resolves the path (addr_resolve),
 * prepares the default per-user directory (/tmp/ipchub-<uid>, 0700, ours),
 * refuses to start when another broker answers on the path, removes a
 * stale socket file (only a socket), binds under umask 0177, chmods to the
 * configured mode, and listens. Each accept callback accepts up to
 * CONF_ACCEPT_BATCH connections (SOCK_CLOEXEC|SOCK_NONBLOCK), reads
 * SO_PEERCRED once, and hands each fd to the accept function, which takes
 * ownership of it. On EMFILE/ENFILE it logs once and pauses accepting for
 * CONF_ACCEPT_BACKOFF_MS.
 *
 * Socket activation: when conf->listen_fd is a socket inherited from the
 * service manager, listener_open() takes ownership of that fd instead of
 * binding (it must be a listening Unix stream socket), and listener_close()
 * closes it but never unlinks its file: the socket unit owns it.
 */
#ifndef IPCHUB_BROKER_LISTENER_H
#define IPCHUB_BROKER_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <event2/event.h>

#include "conf.h"
#include "log.h"

/* Takes ownership of fd. */
typedef void (*listener_accept_fn)(void *arg, int fd, const struct ucred *cred);

struct listener {
	int fd;                 /* owned; -1 when closed */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
	bool abstract;
	bool own_file;          /* we created path; unlink at close */
	bool from_manager;      /* fd inherited (socket activation) */
	dev_t dev;
	ino_t ino;
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
 * Idempotent; accepts a listener that was never opened (fd -1). */
void listener_close(struct listener *l);

#endif
