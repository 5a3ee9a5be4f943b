/*
 * async_event.c - libevent adapter for the event-driven API; see
 * ipchub_event.h.
 *
 * Model: an adapter context owned by the handle through its watch. It
 * holds a persistent read event and a write event for the current socket
 * (both re-created when the fd changes; the write event is added only
 * while the handle wants write readiness) and one timer armed for
 * ipchub_async_next_timeout_ms(). The watch callback re-syncs them after
 * every outermost call into the handle, and frees them on
 * IPCHUB_ASYNC_WATCH_FREE. Event callbacks call ipchub_async_process()
 * last: it may free the handle, and with it this context.
 */
#include <poll.h>
#include <stdlib.h>

#include <event2/event.h>

#include "ipchub_event.h"

struct evctx {
	ipchub_async *a;
	struct event_base *base;
	struct event *rd, *wr, *tm;
	int fd;
	int writing;
};

static void on_io(evutil_socket_t fd, short what, void *arg)
{
	struct evctx *c = arg;
	int revents = 0;

	if (what & EV_READ)
		revents |= POLLIN;
	if (what & EV_WRITE)
		revents |= POLLOUT;
	(void)ipchub_async_process(c->a, revents);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct evctx *c = arg;

	(void)ipchub_async_process(c->a, 0);
}

static void drop_io(struct evctx *c)
{
	if (c->rd)
		event_free(c->rd);
	if (c->wr)
		event_free(c->wr);
	c->rd = c->wr = NULL;
	c->fd = -1;
	c->writing = 0;
}

/* Bring the events in line with the handle. Allocation failures leave
 * the events as they were: the next sync retries. */
static void sync_events(struct evctx *c)
{
	int fd = ipchub_async_fd(c->a);
	int want_w = ipchub_async_wants_write(c->a);
	int t = ipchub_async_next_timeout_ms(c->a);

	if (fd != c->fd) {
		drop_io(c);
		if (fd >= 0) {
			c->rd = event_new(c->base, fd, EV_READ | EV_PERSIST, on_io, c);
			c->wr = event_new(c->base, fd, EV_WRITE | EV_PERSIST, on_io, c);
			if (!c->rd || !c->wr) {
				drop_io(c);
			} else {
				event_add(c->rd, NULL);
				c->fd = fd;
			}
		}
	}
	if (c->wr && want_w != c->writing) {
		if (want_w)
			event_add(c->wr, NULL);
		else
			event_del(c->wr);
		c->writing = want_w;
	}
	if (t < 0) {
		event_del(c->tm);
	} else {
		struct timeval tv = {.tv_sec = t / 1000, .tv_usec = (t % 1000) * 1000};

		event_add(c->tm, &tv);
	}
}

static void watch(ipchub_async *a, int what, void *ctx)
{
	struct evctx *c = ctx;

	if (what == IPCHUB_ASYNC_WATCH_FREE) {
		drop_io(c);
		event_free(c->tm);
		free(c);
		return;
	}
	sync_events(c);
}

int ipchub_async_attach(ipchub_async *a, struct event_base *base)
{
	struct evctx *c;
	int rc;

	if (!a || !base)
		return IPCHUB_E_INVALID;
	c = calloc(1, sizeof(*c));
	if (!c)
		return IPCHUB_E_NOMEM;
	c->a = a;
	c->base = base;
	c->fd = -1;
	c->tm = evtimer_new(base, on_timer, c);
	if (!c->tm) {
		free(c);
		return IPCHUB_E_NOMEM;
	}
	rc = ipchub_async_set_watch(a, watch, c);
	if (rc) {
		event_free(c->tm);
		free(c);
		return rc;
	}
	sync_events(c);
	return IPCHUB_OK;
}
