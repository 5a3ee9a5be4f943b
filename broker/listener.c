/*
 * listener.c - see listener.h. The transport (xport.h) does the binding,
 * the path checks and the credentials; this file owns the loop side:
 * the accept event, the accept batch and the EMFILE back-off.
 */
#include "listener.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "addr.h"

static void accept_cb(evutil_socket_t fd, short what, void *arg);

int listener_open(struct listener *l, struct event_base *base,
		  const struct broker_conf *conf, const struct logger *log,
		  listener_accept_fn cb, void *arg, char *err, size_t cap)
{
	char path[XPORT_PATH_MAX];
	int r;

	memset(l, 0, sizeof(*l));
	xport_listener_init(&l->x);
	path[0] = '\0';
	if (conf->listen_fd < 0) {
		r = addr_resolve(conf->socket_path, path, sizeof(path));
		if (r < 0) {
			snprintf(err, cap, "socket path too long");
			return r;
		}
	}
	r = xport_listen(&l->x, path, conf->listen_fd, conf->socket_mode, err,
			 cap);
	if (r < 0)
		return r;
	if (l->x.from_manager && conf->socket_path &&
	    strcmp(conf->socket_path, l->x.path) != 0)
		log_warn(log,
			 "socket %s from the service manager used; configured "
			 "socket %s ignored",
			 l->x.path, conf->socket_path);
	l->log = log;
	l->cb = cb;
	l->arg = arg;
	l->accept_ev = event_new(base, l->x.sock, EV_READ | EV_PERSIST,
				 accept_cb, l);
	l->backoff_ev = evtimer_new(base, accept_cb, l);
	if (!l->accept_ev || !l->backoff_ev || event_add(l->accept_ev, NULL)) {
		snprintf(err, cap, "out of memory");
		listener_close(l);
		return -ENOMEM;
	}
	return 0;
}

void listener_close(struct listener *l)
{
	if (l->accept_ev) {
		event_free(l->accept_ev);
		l->accept_ev = NULL;
	}
	if (l->backoff_ev) {
		event_free(l->backoff_ev);
		l->backoff_ev = NULL;
	}
	xport_listener_close(&l->x);
}

static void accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	struct listener *l = arg;

	(void)lfd;
	if (what & EV_TIMEOUT) {
		/* Back-off over: listen again. */
		l->backing_off = false;
		event_add(l->accept_ev, NULL);
	}
	for (unsigned i = 0; i < CONF_ACCEPT_BATCH && l->x.sock != XPORT_NONE;
	     i++) {
		struct xport_cred cred;
		xport_sock fd;
		int r = xport_accept(&l->x, &fd, &cred);

		if (r < 0) {
			if (r == -EINTR || r == -ECONNABORTED)
				continue;
			if (r == -EMFILE || r == -ENFILE || r == -ENOBUFS ||
			    r == -ENOMEM) {
				struct timeval tv = {
					.tv_sec = 0,
					.tv_usec = CONF_ACCEPT_BACKOFF_MS * 1000,
				};

				if (!l->fd_starved)
					log_warn(l->log,
						 "accept: %s; retrying every %u ms",
						 strerror(-r),
						 CONF_ACCEPT_BACKOFF_MS);
				l->fd_starved = true;
				l->backing_off = true;
				event_del(l->accept_ev);
				evtimer_add(l->backoff_ev, &tv);
			} else if (r != -EAGAIN) {
				log_warn(l->log, "accept: %s", strerror(-r));
			}
			return;
		}
		if (l->fd_starved) {
			log_info(l->log, "accepting connections again");
			l->fd_starved = false;
		}
		l->cb(l->arg, fd, &cred);
	}
}
