/*
 * harness.c - start/stop a real ipchubd per test, and raw socket helpers.
 *
 * The broker runs as a child process with its stdout on a pipe; we wait
 * for the one "listening on" line it prints when ready, so no test races
 * the bind. Each hub gets its own mkdtemp() directory. Failures abort the
 * test through cmocka's fail_msg().
 */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "addr.h"
#include "frame.h"

int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void hub_spawn(struct hub *hub, const char *const *extra_args, long nofile);

void hub_start(struct hub *hub, const char *const *extra_args)
{
	memset(hub, 0, sizeof(*hub));
	snprintf(hub->dir, sizeof(hub->dir), "/tmp/ipchub-test-XXXXXX");
	if (!mkdtemp(hub->dir))
		fail_msg("mkdtemp: %s", strerror(errno));
	snprintf(hub->path, sizeof(hub->path), "%s/hub.sock", hub->dir);
	hub_spawn(hub, extra_args, -1);
}

void hub_start_nofile(struct hub *hub, const char *const *extra_args, long nofile)
{
	memset(hub, 0, sizeof(*hub));
	snprintf(hub->dir, sizeof(hub->dir), "/tmp/ipchub-test-XXXXXX");
	if (!mkdtemp(hub->dir))
		fail_msg("mkdtemp: %s", strerror(errno));
	snprintf(hub->path, sizeof(hub->path), "%s/hub.sock", hub->dir);
	hub_spawn(hub, extra_args, nofile);
}

void hub_restart(struct hub *hub, const char *const *extra_args)
{
	if (hub->pid > 0)
		fail_msg("hub_restart: the broker is still running");
	hub_spawn(hub, extra_args, -1);
}

int hub_kill(struct hub *hub, int sig)
{
	int status = -1;

	if (hub->pid <= 0)
		return -1;
	kill(hub->pid, sig);
	waitpid(hub->pid, &status, 0);
	hub->pid = 0;
	return status;
}

/* SIGTERM, then SIGKILL if the broker has not exited within 10 s. */
static void hub_kill_wait(struct hub *hub, int *status)
{
	if (hub->pid > 0) {
		kill(hub->pid, SIGTERM);
		int64_t deadline = now_ms() + 10000;
		while (waitpid(hub->pid, status, WNOHANG) == 0) {
			if (now_ms() > deadline) {
				kill(hub->pid, SIGKILL);
				waitpid(hub->pid, status, 0);
				break;
			}
			usleep(5000);
		}
		hub->pid = 0;
	}
}

void hub_halt(struct hub *hub)
{
	int status;

	hub_kill_wait(hub, &status);
}

void hub_resume(struct hub *hub, const char *const *extra_args)
{
	hub_restart(hub, extra_args);
}

long hub_cpu_ticks(const struct hub *hub)
{
	char p[64], buf[1024];
	snprintf(p, sizeof(p), "/proc/%d/stat", (int)hub->pid);
	FILE *f = fopen(p, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* Fields after the ")" that ends the command name: state is field
	 * 3; utime and stime are fields 14 and 15. */
	char *q = strrchr(buf, ')');
	unsigned long ut, st;
	if (!q || sscanf(q + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
			 &ut, &st) != 2)
		return -1;
	return (long)(ut + st);
}

static int valgrind_mode(void)
{
	const char *v = getenv("IPCHUB_TEST_VALGRIND");
	return v && strcmp(v, "1") == 0;
}

long hub_rss_slack_kib(void)
{
	return HUB_RSS_SANITIZER_SLACK_KIB + (valgrind_mode() ? 64L * 1024 : 0);
}

/* valgrind keeps some descriptors of its own below the limit it is given;
 * a test that sets the broker's fd limit means the broker's share. */
#define HUB_VALGRIND_RESERVED_FDS 16

static void hub_spawn(struct hub *hub, const char *const *extra_args, long nofile)
{
	const char *argv[80];
	size_t n = 0;
	/* IPCHUB_TEST_VALGRIND=1: run the broker under memcheck; any leak or
	 * memory error makes it exit 99, which hub_stop() returns. */
	if (valgrind_mode()) {
		if (nofile > 0)
			nofile += HUB_VALGRIND_RESERVED_FDS;
		argv[n++] = "/usr/bin/valgrind";
		argv[n++] = "-q";
		argv[n++] = "--leak-check=full";
		argv[n++] = "--show-leak-kinds=definite,indirect,possible";
		argv[n++] = "--errors-for-leak-kinds=definite,indirect,possible";
		argv[n++] = "--error-exitcode=99";
	}
	argv[n++] = IPCHUBD_PATH;
	argv[n++] = "--socket";
	argv[n++] = hub->path;
	argv[n++] = "--log-level";
	argv[n++] = getenv("IPCHUB_TEST_LOG") ? getenv("IPCHUB_TEST_LOG") : "warn";
	for (size_t i = 0; extra_args && extra_args[i] && n < 78; i++)
		argv[n++] = extra_args[i];
	argv[n] = NULL;

	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0)
		fail_msg("pipe: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0)
		fail_msg("fork: %s", strerror(errno));
	if (pid == 0) {
		dup2(pfd[1], 1);
		/* A test that fails before hub_stop() must not leave a broker
		 * behind holding ctest's output pipe open. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (nofile > 0) {
			struct rlimit rl = {.rlim_cur = (rlim_t)nofile, .rlim_max = (rlim_t)nofile};
			if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
				_exit(126);
		}
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(pfd[1]);
	hub->pid = pid;

	/* Wait for the ready line (bounded: a broker that never starts fails
	 * the test instead of hanging it). */
	char line[512];
	size_t got = 0;
	int64_t deadline = now_ms() + 10000;
	while (!memchr(line, '\n', got)) {
		int left = (int)(deadline - now_ms());
		struct pollfd p = {.fd = pfd[0], .events = POLLIN};
		if (left <= 0 || poll(&p, 1, left) <= 0)
			fail_msg("ipchubd did not become ready");
		ssize_t r = read(pfd[0], line + got, sizeof(line) - 1 - got);
		if (r <= 0)
			fail_msg("ipchubd exited before becoming ready");
		got += (size_t)r;
	}
	line[got] = '\0';
	if (!strstr(line, "listening on"))
		fail_msg("unexpected ipchubd output: %s", line);
	close(pfd[0]);
}

int hub_stop(struct hub *hub)
{
	int status = -1;
	hub_kill_wait(hub, &status);
	unlink(hub->path);
	rmdir(hub->dir);
	return status;
}

ipchub *hub_client(const struct hub *hub, const char *name)
{
	struct ipchub_opts o = {.socket = hub->path, .timeout_ms = 5000};
	ipchub *h = NULL;
	int rc = ipchub_connect(&o, &h);
	if (rc != IPCHUB_OK)
		fail_msg("connect: %s", ipchub_code_name(rc));
	if (name) {
		rc = ipchub_register(h, name, 5000);
		if (rc != IPCHUB_OK)
			fail_msg("register %s: %s", name, ipchub_code_name(rc));
	}
	return h;
}

long hub_rss_kib(const struct hub *hub)
{
	char p[64], line[256];
	snprintf(p, sizeof(p), "/proc/%d/status", (int)hub->pid);
	FILE *f = fopen(p, "r");
	long kib = -1;
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

int hub_fd_count(const struct hub *hub)
{
	return pid_fd_count(hub->pid);
}

int pid_fd_count(pid_t pid)
{
	char p[64];
	snprintf(p, sizeof(p), "/proc/%d/fd", (int)pid);
	DIR *d = opendir(p);
	int n = 0;
	if (!d)
		return -1;
	for (struct dirent *e; (e = readdir(d));)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

int self_fd_count(void)
{
	int n = pid_fd_count(getpid());

	assert_true(n > 0);
	return n - 1; /* the directory stream that counted them */
}

void hub_expect_fd_count(const struct hub *hub, int want, int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;
	int n;

	while ((n = hub_fd_count(hub)) != want && now_ms() < end)
		usleep(2000);
	assert_int_equal(n, want);
}

int raw_connect(const struct hub *hub)
{
	struct sockaddr_un sa;
	socklen_t len;
	assert_int_equal(addr_sockaddr(hub->path, &sa, &len), 0);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	if (connect(fd, (struct sockaddr *)&sa, len) < 0)
		fail_msg("connect: %s", strerror(errno));
	return fd;
}

void raw_claim_name(int fd, const char *name)
{
	struct frame_hdr h;
	uint8_t out[FRAME_ENC_MAX], in[IPCHUB_MAX_HEADER];

	frame_init(&h, WIRE_REGISTER);
	h.id = 1;
	h.has |= FH(WK_ID);
	frame_set_str(&h, WK_NAME, name, strlen(name));
	raw_write_all(fd, out, frame_encode(&h, 0, out, sizeof(out)));
	assert_true(raw_read_frame(fd, in, sizeof(in), 10000) > 0);
}

void raw_write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			fail_msg("raw write: %s", strerror(errno));
		p += w;
		len -= (size_t)w;
	}
}

static int read_full(int fd, uint8_t *buf, size_t n, int64_t deadline)
{
	size_t got = 0;
	while (got < n) {
		int left = (int)(deadline - now_ms());
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (left <= 0 || poll(&p, 1, left) <= 0)
			return -1;
		ssize_t r = read(fd, buf + got, n - got);
		if (r == 0)
			return 0;
		if (r < 0)
			return errno == EINTR ? -1 : -1;
		got += (size_t)r;
	}
	return 1;
}

ssize_t raw_read_frame(int fd, uint8_t *buf, size_t cap, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	uint8_t pre[4];
	int r = read_full(fd, pre, 4, deadline);
	if (r <= 0)
		return r == 0 ? 0 : -1;
	uint32_t len = frame_get_len(pre);
	if (len > cap)
		return -1;
	r = read_full(fd, buf, len, deadline);
	return r == 1 ? (ssize_t)len : -1;
}

void raw_hello(int fd)
{
	struct frame_hdr h;
	uint8_t out[FRAME_ENC_MAX];
	frame_init(&h, WIRE_HELLO);
	h.ver = IPCHUB_PROTO_VERSION_MAX;
	h.ver_min = IPCHUB_PROTO_VERSION_MIN;
	h.has |= FH(WK_VER) | FH(WK_VER_MIN);
	size_t n = frame_encode(&h, 0, out, sizeof(out));
	raw_write_all(fd, out, n);
	uint8_t in[IPCHUB_MAX_HEADER];
	ssize_t len = raw_read_frame(fd, in, sizeof(in), 5000);
	assert_true(len > 0);
	struct iovec iov;
	struct mpr r;
	bool body;
	mpr_init_buf(&r, &iov, in, (size_t)len);
	assert_int_equal(frame_decode(&r, FRAME_B2C, &h, &body, NULL), WIRE_E_OK);
	assert_int_equal(h.kind, WIRE_WELCOME);
}

int raw_wait_eof(int fd, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	uint8_t buf[4096];
	for (;;) {
		int left = (int)(deadline - now_ms());
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (left <= 0 || poll(&p, 1, left) <= 0)
			return 0;
		ssize_t r = read(fd, buf, sizeof(buf));
		if (r == 0 || (r < 0 && errno == ECONNRESET))
			return 1;
		if (r < 0 && errno != EINTR)
			return 0;
	}
}

void body_kv(ipchub_pack *p, const char *k, const char *v)
{
	ipchub_pack_reset(p);
	msgpack_pack_map(&p->pk, 1);
	msgpack_pack_str_with_body(&p->pk, k, strlen(k));
	msgpack_pack_str_with_body(&p->pk, v, strlen(v));
}

void body_seq(ipchub_pack *p, uint64_t seq, size_t pad)
{
	ipchub_pack_reset(p);
	msgpack_pack_array(&p->pk, 2);
	msgpack_pack_uint64(&p->pk, seq);
	char *fill = calloc(1, pad ? pad : 1);
	msgpack_pack_bin_with_body(&p->pk, fill, pad);
	free(fill);
}

uint64_t hub_stat_u64(ipchub *h, const char *key)
{
	ipchub_msg *m = NULL;
	msgpack_unpacked u;
	uint64_t v = 0;

	assert_int_equal(ipchub_request(h, "ipchub.stats", NULL, 0, 5000, &m),
			 IPCHUB_OK);
	msgpack_unpacked_init(&u);
	assert_int_equal(ipchub_msg_unpack(m, &u), IPCHUB_OK);
	assert_int_equal(u.data.type, MSGPACK_OBJECT_MAP);
	for (uint32_t i = 0; i < u.data.via.map.size; i++) {
		const msgpack_object_kv *kv = &u.data.via.map.ptr[i];

		if (kv->key.type == MSGPACK_OBJECT_STR &&
		    kv->key.via.str.size == strlen(key) &&
		    memcmp(kv->key.via.str.ptr, key, strlen(key)) == 0 &&
		    kv->val.type == MSGPACK_OBJECT_POSITIVE_INTEGER)
			v = kv->val.via.u64;
	}
	msgpack_unpacked_destroy(&u);
	ipchub_msg_free(m);
	return v;
}
