/*
 * xport_loop.c - the named-pipe transport driven by libevent, as the
 * broker drives it (run under Wine by tests/win/run-win-deps).
 *
 * An event_base watches the listener's handle (xport_listener.sock) and
 * each accepted connection's handle for EV_READ, reads with xport_recv()
 * into an evbuffer and echoes with evbuffer_write(), the call
 * broker/conn.c flushes with; EV_WRITE is armed only while output
 * remains. NCLIENTS client threads each connect, write 256 KiB and read
 * the echo back with WSAPoll, as the client library's poll loop would,
 * then close. The loop ends when every connection has reached end of
 * stream; a 60 s timer fails the run instead of hanging it.
 */
#include <errno.h>
#include <process.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "xport.h"

#define NCLIENTS 4
#define NBYTES (256u << 10)

#define CHECK(e)                                                               \
	do {                                                                   \
		if (!(e)) {                                                    \
			fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, \
				__LINE__, #e);                                 \
			exit(1);                                               \
		}                                                              \
	} while (0)

struct echo {
	xport_sock s;
	struct evbuffer *buf;
	struct event *rd, *wr;
	bool writing;
};

static struct event_base *base;
static struct xport_listener lis;
static int nclosed;
static char path[XPORT_PATH_MAX];

static void echo_flush(struct echo *e)
{
	while (evbuffer_get_length(e->buf) > 0) {
		int n = evbuffer_write(e->buf, e->s);

		if (n <= 0)
			break;
	}
	if (evbuffer_get_length(e->buf) > 0 && !e->writing) {
		event_add(e->wr, NULL);
		e->writing = true;
	} else if (evbuffer_get_length(e->buf) == 0 && e->writing) {
		event_del(e->wr);
		e->writing = false;
	}
}

static void echo_cb(evutil_socket_t fd, short what, void *arg)
{
	struct echo *e = arg;
	char b[16384];

	(void)fd;
	if (what & EV_WRITE) {
		echo_flush(e);
		return;
	}
	for (;;) {
		struct iovec v = {.iov_base = b, .iov_len = sizeof(b)};
		xport_ssize n = xport_recv(e->s, &v, 1, NULL, NULL);

		if (n > 0) {
			evbuffer_add(e->buf, b, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EAGAIN)
			break;
		/* End of stream (or reset): this connection is done. */
		event_free(e->rd);
		event_free(e->wr);
		evbuffer_free(e->buf);
		xport_close(e->s);
		free(e);
		if (++nclosed == NCLIENTS)
			event_base_loopbreak(base);
		return;
	}
	echo_flush(e);
}

static void accept_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	for (;;) {
		struct xport_cred cred;
		struct echo *e;
		xport_sock s;
		int r = xport_accept(&lis, &s, &cred);

		if (r == -EAGAIN)
			return;
		CHECK(r == 0);
		CHECK(cred.pid == (long)GetCurrentProcessId());
		CHECK(strncmp(cred.sid, "S-1-", 4) == 0);
		CHECK((e = calloc(1, sizeof(*e))) != NULL);
		e->s = s;
		e->buf = evbuffer_new();
		e->rd = event_new(base, s, EV_READ | EV_PERSIST, echo_cb, e);
		e->wr = event_new(base, s, EV_WRITE | EV_PERSIST, echo_cb, e);
		CHECK(e->buf && e->rd && e->wr && event_add(e->rd, NULL) == 0);
	}
}

static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	fprintf(stderr, "xport_loop: timed out with %d of %d connections done\n",
		nclosed, NCLIENTS);
	exit(1);
}

static bool wait_sock(xport_sock s, short ev)
{
	WSAPOLLFD p = {.fd = (SOCKET)s, .events = ev};

	return WSAPoll(&p, 1, 30000) == 1;
}

static unsigned __stdcall client(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	char *out = malloc(NBYTES), *in = malloc(NBYTES);
	size_t sent = 0, got = 0;
	xport_sock s;
	int r;

	CHECK(out && in);
	for (size_t i = 0; i < NBYTES; i++)
		out[i] = (char)(i * 7 + seed);
	do
		r = xport_connect(path, &s);
	while (r == -EAGAIN); /* every instance busy for a moment */
	CHECK(r == 0);
	while (got < NBYTES) {
		struct iovec v;
		xport_ssize n;

		if (sent < NBYTES) {
			v = (struct iovec){out + sent, NBYTES - sent};
			n = xport_send(s, &v, 1, NULL, 0);
			if (n > 0)
				sent += (size_t)n;
			else
				CHECK(n < 0 && errno == EAGAIN);
		}
		v = (struct iovec){in + got, NBYTES - got};
		n = xport_recv(s, &v, 1, NULL, NULL);
		if (n > 0)
			got += (size_t)n;
		else
			CHECK(n < 0 && errno == EAGAIN);
		if (n <= 0)
			CHECK(wait_sock(s, sent < NBYTES ? POLLRDNORM | POLLWRNORM
							 : POLLRDNORM));
	}
	CHECK(memcmp(in, out, NBYTES) == 0);
	xport_close(s);
	free(out);
	free(in);
	return 0;
}

int main(void)
{
	struct timeval tv = {.tv_sec = 60};
	struct event *lev, *tev;
	HANDLE t[NCLIENTS];
	char err[256];
	WSADATA wsa;

	CHECK(WSAStartup(MAKEWORD(2, 2), &wsa) == 0);
	snprintf(path, sizeof(path), "\\\\.\\pipe\\ipchub-loop-%lu",
		 (unsigned long)GetCurrentProcessId());
	CHECK((base = event_base_new()) != NULL);
	printf("libevent %s, backend %s\n", event_get_version(),
	       event_base_get_method(base));
	if (xport_listen(&lis, path, -1, 0600, err, sizeof(err)) != 0) {
		fprintf(stderr, "listen: %s\n", err);
		return 1;
	}
	lev = event_new(base, lis.sock, EV_READ | EV_PERSIST, accept_cb, NULL);
	tev = evtimer_new(base, timeout_cb, NULL);
	CHECK(lev && tev && event_add(lev, NULL) == 0 && evtimer_add(tev, &tv) == 0);
	for (int i = 0; i < NCLIENTS; i++)
		CHECK((t[i] = (HANDLE)_beginthreadex(NULL, 0, client,
						     (void *)(uintptr_t)i, 0,
						     NULL)) != NULL);
	CHECK(event_base_dispatch(base) == 0);
	CHECK(nclosed == NCLIENTS);
	CHECK(WaitForMultipleObjects(NCLIENTS, t, TRUE, 30000) == WAIT_OBJECT_0);
	for (int i = 0; i < NCLIENTS; i++)
		CloseHandle(t[i]);
	event_free(lev);
	event_free(tev);
	xport_listener_close(&lis);
	event_base_free(base);
	printf("xport_loop: %d connections echoed %u bytes each through libevent\n",
	       NCLIENTS, NBYTES);
	return 0;
}
