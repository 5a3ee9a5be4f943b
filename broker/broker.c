/*
 * broker.c - see broker.h for the model. Connections reach the dead list
 * only through conn_kill(), and are freed only here, by the reap event,
 * after the callback that killed them has returned.
 */
#include "broker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "frame.h"
#include "route.h"

/* Initial iovec scratch: a frame spread over more chains than this (a
 * large one) grows it once; it is kept for the broker's life. */
#define BROKER_IOV_INITIAL 64

uint64_t broker_now_ms(struct broker *b)
{
	struct timespec ts;

	(void)b;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int broker_iov_reserve(struct broker *b, int n)
{
	struct iovec *v;

	if (n <= b->iov_cap)
		return 0;
	v = realloc(b->iov, (size_t)n * sizeof(*v));
	if (!v)
		return -ENOMEM;
	b->iov = v;
	b->iov_cap = n;
	return 0;
}

struct conn *broker_conn_find(struct broker *b, uint64_t id)
{
	uint64_t h = htab_hash(&b->conns, &id, sizeof(id));
	struct htab_probe p;
	struct conn *c;

	for (c = htab_probe_first(&b->conns, h, &p); c;
	     c = htab_probe_next(&b->conns, h, &p))
		if (c->id == id)
			return c;
	return NULL;
}

void broker_conn_unregister(struct broker *b, struct conn *c)
{
	htab_remove(&b->conns, c->hash, c);
}

void broker_want_flush(struct broker *b, struct conn *c)
{
	if (c->in_flush || c->state == CONN_DEAD)
		return;
	c->in_flush = true;
	TAILQ_INSERT_TAIL(&b->flush, c, flush_link);
	/* Runs after the callbacks already due in this iteration, so all
	 * frames they queue for c leave in one write. */
	event_active(b->flush_ev, EV_TIMEOUT, 0);
}

void broker_reap_later(struct broker *b, struct conn *c)
{
	TAILQ_REMOVE(&b->all, c, link);
	b->nconns--;
	TAILQ_INSERT_TAIL(&b->dead, c, link);
	event_active(b->reap_ev, EV_TIMEOUT, 0);
}

static void maybe_done(struct broker *b)
{
	if (b->stopping && TAILQ_EMPTY(&b->all))
		event_base_loopexit(b->base, NULL);
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct broker *b = arg;
	struct conn *c;

	(void)fd;
	(void)what;
	while ((c = TAILQ_FIRST(&b->flush))) {
		TAILQ_REMOVE(&b->flush, c, flush_link);
		c->in_flush = false;
		conn_flush(c);
	}
}

static void reap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct broker *b = arg;
	struct conn *c;

	(void)fd;
	(void)what;
	while ((c = TAILQ_FIRST(&b->dead))) {
		TAILQ_REMOVE(&b->dead, c, link);
		conn_free(c);
	}
	maybe_done(b);
}

static void stop_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct broker *b = arg;

	(void)fd;
	(void)what;
	log_info(&b->log, "shutdown: %u connection(s) still flushing; closing them",
		 b->nconns);
	event_base_loopexit(b->base, NULL);
}

/* Over max_conns: tell the client why, without reading anything. */
static void reject_conn(struct broker *b, xport_sock fd,
			const struct xport_cred *cred)
{
	struct frame_hdr e;
	uint8_t buf[FRAME_ENC_MAX];
	size_t n;
	static const char msg[] = "too many connections";

	frame_init(&e, WIRE_ERROR);
	e.id = 0;
	e.code = WIRE_E_LIMIT;
	e.has |= FH(WK_ID) | FH(WK_CODE);
	frame_set_str(&e, WK_MSG, msg, sizeof(msg) - 1);
	n = frame_encode(&e, 0, buf, sizeof(buf));
	(void)xport_send(fd, &(struct iovec){.iov_base = buf, .iov_len = n}, 1,
			 NULL, 0);
	xport_close(fd);
	log_warn(&b->log,
		 "conn - (pid %ld uid %lu name -) rejected: LIMIT: %u connections (max_conns)",
		 (long)cred->pid, (unsigned long)cred->uid, b->conf.max_conns);
}

static void on_accept(void *arg, xport_sock fd, const struct xport_cred *cred)
{
	struct broker *b = arg;
	struct conn *c;
	uint64_t id;

	if (b->stopping) {
		xport_close(fd);
		return;
	}
	if (b->nconns >= b->conf.max_conns) {
		reject_conn(b, fd, cred);
		return;
	}
	id = b->next_conn_id;
	c = conn_new(b, fd, cred, id);
	if (!c) {
		log_warn(&b->log, "connection from pid %ld uid %lu dropped: out of memory",
			 (long)cred->pid, (unsigned long)cred->uid);
		xport_close(fd);
		return;
	}
	c->hash = htab_hash(&b->conns, &id, sizeof(id));
	if (htab_insert(&b->conns, c->hash, c) < 0) {
		log_warn(&b->log, "connection from pid %ld uid %lu dropped: out of memory",
			 (long)cred->pid, (unsigned long)cred->uid);
		conn_free(c);
		return;
	}
	b->next_conn_id++;
	b->st.conns_total++;
	TAILQ_INSERT_TAIL(&b->all, c, link);
	b->nconns++;
	log_info(&b->log, "conn %llu accepted (pid %ld uid %lu gid %lu)",
		 (unsigned long long)id, (long)cred->pid,
		 (unsigned long)cred->uid, (unsigned long)cred->gid);
}

struct broker *broker_new(const struct broker_conf *conf, char *err,
			  size_t cap)
{
	struct broker *b;
	struct event_config *cfg;
	unsigned char rnd[IPCHUB_BROKER_ID_LEN / 2];
	int r;

	r = conf_validate(conf, err, cap);
	if (r < 0)
		goto fail_early;
	if (sodium_init() < 0) {
		snprintf(err, cap, "libsodium initialization failed");
		goto fail_early;
	}
	b = calloc(1, sizeof(*b));
	if (!b)
		goto nomem;
	xport_listener_init(&b->lis.x);
	if (conf_copy(&b->conf, conf) < 0) {
		conf_defaults(&b->conf);
		goto nomem;
	}
	TAILQ_INIT(&b->auth.hs);
	log_init(&b->log, conf->log_level, stderr);
	log_set_target(&b->log, conf->log_target);
	TAILQ_INIT(&b->all);
	TAILQ_INIT(&b->dead);
	TAILQ_INIT(&b->flush);
	b->next_conn_id = 1;
	b->started = time(NULL);
	stats_init(&b->st, broker_now_ms(b));
	monitor_init(&b->mon);
	randombytes_buf(rnd, sizeof(rnd));
	sodium_bin2hex(b->id_hex, sizeof(b->id_hex), rnd, sizeof(rnd));

	cfg = event_config_new();
	if (!cfg)
		goto nomem;
	/* One thread: no locking inside libevent. */
	event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
	b->base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	if (!b->base)
		goto nomem;
	if (htab_init(&b->conns, 1024) < 0 || names_init(&b->names) < 0 ||
	    pending_init(&b->pending, b->base, route_on_expire, b) < 0 ||
	    pubsub_init(&b->ps) < 0 || presence_init(&b->pr) < 0 ||
	    broker_iov_reserve(b, BROKER_IOV_INITIAL) < 0)
		goto nomem;
	r = auth_init(&b->auth, &b->conf, err, cap);
	if (r < 0) {
		broker_free(b);
		return NULL;
	}
	b->reap_ev = event_new(b->base, -1, 0, reap_cb, b);
	b->flush_ev = event_new(b->base, -1, 0, flush_cb, b);
	b->stop_ev = evtimer_new(b->base, stop_timeout_cb, b);
	if (!b->reap_ev || !b->flush_ev || !b->stop_ev)
		goto nomem;
	r = listener_open(&b->lis, b->base, &b->conf, &b->log, on_accept, b,
			  err, cap);
	if (r < 0) {
		broker_free(b);
		return NULL;
	}
	log_info(&b->log,
		 "broker %s listening on %s (max_frame %u, queue_hwm %u, max_conns %u)",
		 b->id_hex, b->lis.x.path, b->conf.max_frame, b->conf.queue_hwm,
		 b->conf.max_conns);
	return b;

nomem:
	snprintf(err, cap, "out of memory");
	broker_free(b);
	if (conf->listen_fd >= 0)
		close(conf->listen_fd);
	return NULL;

fail_early:
	if (conf->listen_fd >= 0)
		close(conf->listen_fd);
	return NULL;
}

int broker_run(struct broker *b)
{
	return event_base_dispatch(b->base) < 0 ? -1 : 0;
}

void broker_stop(struct broker *b)
{
	struct timeval tv = {
		.tv_sec = CONF_SHUTDOWN_FLUSH_MS / 1000,
		.tv_usec = (CONF_SHUTDOWN_FLUSH_MS % 1000) * 1000,
	};
	struct conn *c;
	static const char msg[] = "the broker is shutting down";

	if (b->stopping)
		return;
	b->stopping = true;
	log_info(&b->log, "shutting down: %u connection(s)", b->nconns);
	listener_close(&b->lis);
	TAILQ_FOREACH(c, &b->all, link) {
		struct frame_hdr h;

		if (c->state > CONN_READY)
			continue;
		frame_init(&h, WIRE_BYE);
		h.code = WIRE_E_SHUTTING_DOWN;
		h.has |= FH(WK_CODE);
		frame_set_str(&h, WK_MSG, msg, sizeof(msg) - 1);
		conn_send_hdr(c, &h);
		/* Does not kill synchronously, so the iteration is safe. */
		conn_close(c, "broker shutting down");
	}
	evtimer_add(b->stop_ev, &tv);
	maybe_done(b);
}

void broker_free(struct broker *b)
{
	struct conn *c;

	if (!b)
		return;
	listener_close(&b->lis);
	b->stopping = true;
	while ((c = TAILQ_FIRST(&b->all)))
		conn_kill(c, "broker exiting");
	while ((c = TAILQ_FIRST(&b->dead))) {
		TAILQ_REMOVE(&b->dead, c, link);
		conn_free(c);
	}
	if (b->base)
		pending_fini(&b->pending);
	pubsub_fini(&b->ps);
	presence_fini(&b->pr);
	names_fini(&b->names);
	htab_fini(&b->conns);
	auth_fini(&b->auth);
	if (b->reap_ev)
		event_free(b->reap_ev);
	if (b->flush_ev)
		event_free(b->flush_ev);
	if (b->stop_ev)
		event_free(b->stop_ev);
	if (b->base)
		event_base_free(b->base);
	free(b->iov);
	conf_clear(&b->conf);
	free(b);
}
