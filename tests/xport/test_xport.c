/*
 * test_xport.c - the transport interface (xport.h), run against whichever
 * implementation the build links: Unix domain sockets natively (ctest
 * unit_xport), Windows named pipes under Wine (ctest win_xport, built by
 * tests/win/run-win-xport with mingw-w64). No cmocka, which has no mingw
 * build here: CHECK() prints the failed expression and exits 1.
 *
 * Covers: listen refuses a path another listener answers on; connect ->
 * writable -> connect_result; accept with the peer's credentials (our own
 * pid and uid, and on Windows our user SID, whose last sub-authority is
 * the uid); bytes both ways, peek without consuming, readable count, a
 * 4 MiB transfer each way through non-blocking handles (the bridge's
 * backpressure on Windows); end of stream both ways; connecting where
 * nobody listens; SCM_RIGHTS on Unix, EOPNOTSUPP for descriptors on
 * Windows; a closed listener refuses connections.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xport.h"

#ifdef _WIN32
#include <windows.h>
#include <aclapi.h>
#include <sddl.h>
#include "addr.h"
#define getpid() ((long)GetCurrentProcessId())
#else
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>
#endif

#define CHECK(e)                                                               \
	do {                                                                   \
		if (!(e)) {                                                    \
			fprintf(stderr, "%s:%d: CHECK(%s) failed (errno %d)\n", \
				__FILE__, __LINE__, #e, errno);                \
			exit(1);                                               \
		}                                                              \
	} while (0)

/* Generous: the machine running the suite may be loaded. */
#define WAIT_MS 30000

/* Wait until s is readable (in) or writable; false on timeout. */
static bool wait_sock(xport_sock s, bool in)
{
#ifdef _WIN32
	WSAPOLLFD p = {.fd = (SOCKET)s, .events = in ? POLLRDNORM : POLLWRNORM};
	return WSAPoll(&p, 1, WAIT_MS) == 1;
#else
	struct pollfd p = {.fd = s, .events = in ? POLLIN : POLLOUT};
	return poll(&p, 1, WAIT_MS) == 1;
#endif
}

static bool would_block(void)
{
	return errno == EAGAIN || errno == EWOULDBLOCK;
}

static void connect_pair(struct xport_listener *l, const char *path,
			 xport_sock *cli, xport_sock *srv,
			 struct xport_cred *cred)
{
	int r = xport_connect(path, cli);

	CHECK(r == 0 || r == -EINPROGRESS);
	if (r == -EINPROGRESS) {
		CHECK(wait_sock(*cli, false));
		CHECK(xport_connect_result(*cli) == 0);
	}
	for (;;) {
		CHECK(wait_sock(l->sock, true));
		r = xport_accept(l, srv, cred);
		if (r == 0)
			break;
		CHECK(r == -EAGAIN || r == -EINTR);
	}
}

static void send_all(xport_sock s, const char *p, size_t n)
{
	while (n) {
		struct iovec v = {.iov_base = (void *)p, .iov_len = n};
		xport_ssize k = xport_send(s, &v, 1, NULL, 0);

		if (k < 0 && would_block()) {
			CHECK(wait_sock(s, false));
			continue;
		}
		CHECK(k > 0);
		p += k;
		n -= (size_t)k;
	}
}

static void recv_all(xport_sock s, char *p, size_t n)
{
	while (n) {
		struct iovec v = {.iov_base = p, .iov_len = n};
		xport_ssize k = xport_recv(s, &v, 1, NULL, NULL);

		if (k < 0 && would_block()) {
			CHECK(wait_sock(s, true));
			continue;
		}
		CHECK(k > 0);
		p += k;
		n -= (size_t)k;
	}
}

static void expect_eof(xport_sock s)
{
	char c;

	for (;;) {
		struct iovec v = {.iov_base = &c, .iov_len = 1};
		xport_ssize k = xport_recv(s, &v, 1, NULL, NULL);

		if (k < 0 && would_block()) {
			CHECK(wait_sock(s, true));
			continue;
		}
		CHECK(k == 0);
		return;
	}
}

/* 4 MiB each way at once: neither side may stall the other. */
static void bulk(xport_sock a, xport_sock b)
{
	size_t n = 4u << 20, sa = 0, ra = 0, sb = 0, rb = 0;
	char *out = malloc(n), *ina = malloc(n), *inb = malloc(n);
	time_t until = time(NULL) + WAIT_MS / 1000;

	CHECK(out && ina && inb);
	for (size_t i = 0; i < n; i++)
		out[i] = (char)(i * 131 + (i >> 13));
	while (ra < n || rb < n) {
		struct iovec v;
		xport_ssize k;
		bool moved = false;

		CHECK(time(NULL) < until);
		if (sa < n) {
			v = (struct iovec){out + sa, n - sa};
			if ((k = xport_send(a, &v, 1, NULL, 0)) > 0)
				sa += (size_t)k, moved = true;
			else
				CHECK(k < 0 && would_block());
		}
		if (sb < n) {
			v = (struct iovec){out + sb, n - sb};
			if ((k = xport_send(b, &v, 1, NULL, 0)) > 0)
				sb += (size_t)k, moved = true;
			else
				CHECK(k < 0 && would_block());
		}
		if (rb < n) {
			v = (struct iovec){inb + rb, n - rb};
			if ((k = xport_recv(b, &v, 1, NULL, NULL)) > 0)
				rb += (size_t)k, moved = true;
			else
				CHECK(k < 0 && would_block());
		}
		if (ra < n) {
			v = (struct iovec){ina + ra, n - ra};
			if ((k = xport_recv(a, &v, 1, NULL, NULL)) > 0)
				ra += (size_t)k, moved = true;
			else
				CHECK(k < 0 && would_block());
		}
		if (!moved)
			(void)wait_sock(rb < n ? b : a, true);
	}
	CHECK(memcmp(ina, out, n) == 0);
	CHECK(memcmp(inb, out, n) == 0);
	free(out);
	free(ina);
	free(inb);
}

#ifdef _WIN32
/* This process's user SID as a string (LocalFree it). */
static char *self_sid(void)
{
	HANDLE tok;
	DWORD len = 0;
	TOKEN_USER *tu;
	char *sid = NULL;

	CHECK(OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok));
	GetTokenInformation(tok, TokenUser, NULL, 0, &len);
	CHECK((tu = malloc(len)) != NULL);
	CHECK(GetTokenInformation(tok, TokenUser, tu, len, &len));
	CHECK(ConvertSidToStringSidA(tu->User.Sid, &sid));
	free(tu);
	CloseHandle(tok);
	return sid;
}

/* The pipe's DACL, read through a raw client handle: protected, our user
 * and SYSTEM only. The raw connection is then accepted and closed. */
static void check_dacl(struct xport_listener *l, const char *path)
{
	HANDLE h = CreateFileA(path, GENERIC_READ | GENERIC_WRITE, 0, NULL,
			       OPEN_EXISTING, 0, NULL);
	PSECURITY_DESCRIPTOR sd = NULL;
	char *sddl = NULL, *sid = self_sid(), want[256], mapped[256];
	struct xport_cred c;
	xport_sock srv;
	int r;

	CHECK(h != INVALID_HANDLE_VALUE);
	CHECK(GetSecurityInfo(h, SE_KERNEL_OBJECT, DACL_SECURITY_INFORMATION,
			      NULL, NULL, NULL, NULL, &sd) == ERROR_SUCCESS);
	CHECK(ConvertSecurityDescriptorToStringSecurityDescriptorA(
		sd, SDDL_REVISION_1, DACL_SECURITY_INFORMATION, &sddl, NULL));
	printf("pipe dacl %s\n", sddl);
	/* As written (Wine 8.0 keeps generic rights) or with GENERIC_ALL
	 * mapped to the pipe's FILE_ALL_ACCESS (Windows). */
	snprintf(want, sizeof(want), "D:P(A;;GA;;;%s)(A;;GA;;;SY)", sid);
	snprintf(mapped, sizeof(mapped), "D:P(A;;FA;;;%s)(A;;FA;;;SY)", sid);
	CHECK(strcmp(sddl, want) == 0 || strcmp(sddl, mapped) == 0);
	LocalFree(sddl);
	LocalFree(sd);
	LocalFree(sid);
	for (;;) {
		CHECK(wait_sock(l->sock, true));
		r = xport_accept(l, &srv, &c);
		if (r == 0)
			break;
		CHECK(r == -EAGAIN);
	}
	CloseHandle(h);
	expect_eof(srv);
	xport_close(srv);
}
#endif

/* Our own user, as the listener should see us. */
static void check_cred(const struct xport_cred *c)
{
	CHECK(c->pid == (long)getpid());
#ifdef _WIN32
	char *sid = self_sid();
	const char *dash = strrchr(sid, '-');

	printf("peer sid %s uid %lu\n", c->sid, (unsigned long)c->uid);
	CHECK(strcmp(c->sid, sid) == 0);
	CHECK(dash && c->uid == (uint32_t)strtoul(dash + 1, NULL, 10));
	LocalFree(sid);
#else
	CHECK(c->uid == (uint32_t)getuid());
	CHECK(c->gid == (uint32_t)getgid());
	CHECK(c->sid[0] == '\0');
#endif
}

static void test_fds(xport_sock cli, xport_sock srv)
{
	char b = 'x';
	struct iovec v = {.iov_base = &b, .iov_len = 1};
	int fd0 = 0, got[8];
	uint32_t n = 0;
	xport_ssize k;

	if (!xport_passes_fds()) {
		k = xport_send(cli, &v, 1, &fd0, 1);
		CHECK(k < 0 && errno == EOPNOTSUPP);
		return;
	}
#ifndef _WIN32
	int p[2];

	CHECK(pipe(p) == 0);
	CHECK(xport_send(cli, &v, 1, &p[1], 1) == 1);
	CHECK(wait_sock(srv, true));
	k = xport_recv(srv, &v, 1, got, &n);
	CHECK(k == 1 && n == 1);
	CHECK(write(got[0], "y", 1) == 1);
	CHECK(read(p[0], &b, 1) == 1 && b == 'y');
	CHECK(fcntl(got[0], F_GETFD) & FD_CLOEXEC);
	close(got[0]);
	close(p[0]);
	close(p[1]);
#else
	(void)srv;
	(void)got;
	(void)n;
#endif
}

int main(void)
{
	char path[XPORT_PATH_MAX], missing[XPORT_PATH_MAX], err[256];
	struct xport_listener l, l2;
	struct xport_cred cred;
	xport_sock cli, srv, s;
	char buf[16];
	struct iovec v[2];
	int r;

#ifdef _WIN32
	WSADATA wsa;

	char user[257], want[300];
	DWORD ulen = sizeof(user);

	CHECK(WSAStartup(MAKEWORD(2, 2), &wsa) == 0);
	/* The default pipe name. */
	CHECK(GetUserNameA(user, &ulen));
	snprintf(want, sizeof(want), "\\\\.\\pipe\\ipchub-%s", user);
	CHECK(addr_resolve(NULL, path, sizeof(path)) == 0);
	printf("default path %s\n", path);
	CHECK(strcmp(path, want) == 0);
	snprintf(path, sizeof(path), "\\\\.\\pipe\\ipchub-test-%ld", getpid());
	snprintf(missing, sizeof(missing), "\\\\.\\pipe\\ipchub-none-%ld",
		 getpid());
#else
	char dir[] = "/tmp/xport-test-XXXXXX";

	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/hub.sock", dir);
	snprintf(missing, sizeof(missing), "%s/none.sock", dir);
#endif
	r = xport_listen(&l, path, -1, 0600, err, sizeof(err));
	if (r < 0)
		fprintf(stderr, "listen: %s\n", err);
	CHECK(r == 0);
	CHECK(strcmp(l.path, path) == 0);

#ifdef _WIN32
	check_dacl(&l, path);
#endif
	connect_pair(&l, path, &cli, &srv, &cred);
	check_cred(&cred);
	CHECK(cred.uid == xport_self_uid());

	send_all(cli, "hello", 5);
	CHECK(wait_sock(srv, true));
	/* The bytes may still be on their way through the bridge. */
	for (time_t until = time(NULL) + WAIT_MS / 1000;
	     xport_readable(srv) < 5;)
		CHECK(time(NULL) < until && wait_sock(srv, true));
	CHECK(xport_peek(srv, buf, sizeof(buf)) == 5);
	CHECK(memcmp(buf, "hello", 5) == 0);
	memset(buf, 0, sizeof(buf));
	v[0] = (struct iovec){buf, 2};
	v[1] = (struct iovec){buf + 2, 3};
	CHECK(xport_recv(srv, v, 2, NULL, NULL) == 5);
	CHECK(memcmp(buf, "hello", 5) == 0);
	send_all(srv, "world", 5);
	recv_all(cli, buf, 5);
	CHECK(memcmp(buf, "world", 5) == 0);

	bulk(cli, srv);
	test_fds(cli, srv);

	xport_close(cli);
	expect_eof(srv);
	xport_close(srv);

	/* The other way round: the server ends the stream. */
	connect_pair(&l, path, &cli, &srv, &cred);
	send_all(srv, "bye", 3);
	xport_close(srv);
	recv_all(cli, buf, 3);
	CHECK(memcmp(buf, "bye", 3) == 0);
	expect_eof(cli);
	xport_close(cli);

	r = xport_connect(missing, &s);
	CHECK(r == -ENOENT || r == -ECONNREFUSED);
	CHECK(xport_connect("", &s) == -EINVAL);

	/* Last: on Unix the probe is a connection the first listener could
	 * accept. */
	r = xport_listen(&l2, path, -1, 0600, err, sizeof(err));
	if (r != -EADDRINUSE)
		fprintf(stderr, "second listen: %d (%s)\n", r, r ? err : "accepted");
	CHECK(r == -EADDRINUSE);
	printf("second listener: %s\n", err);

	xport_listener_close(&l);
	xport_listener_close(&l); /* idempotent */
	r = xport_connect(path, &s);
	CHECK(r == -ENOENT || r == -ECONNREFUSED);
#ifndef _WIN32
	CHECK(access(path, F_OK) < 0 && errno == ENOENT);
	rmdir(dir);
#endif
	printf("xport: all checks passed\n");
	return 0;
}
