/*
 * test_ops.c - ipchubd as a service: configuration file and precedence,
 * --check-config, socket activation (LISTEN_FDS) with readiness
 * notification (NOTIFY_SOCKET), graceful SIGTERM delivering what is
 * queued, SIGHUP reload (applied; a broken file rejected while the broker
 * keeps running).
 *
 * Model: each test owns a mkdtemp() directory holding its config files,
 * socket and the broker's log file (stderr redirected there, so the tests
 * can wait for a log line instead of sleeping). Brokers are started by
 * ops_start() below (not harness.c's hub_start), because these tests need
 * control of the environment, the fds and stderr; once started they are
 * wrapped in a struct hub so harness helpers (hub_client, hub_stop) work.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

/* Upper bound on any wait here: only stops a hung test. */
#define OPS_WAIT_MS 10000

struct ops {
	char dir[256];
	char path[300];    /* socket */
	char conf[300];    /* config file */
	char log[300];     /* broker stderr */
	struct hub hub;    /* pid/dir/path once running */
};

static void ops_init(struct ops *o)
{
	memset(o, 0, sizeof(*o));
	snprintf(o->dir, sizeof(o->dir), "/tmp/ipchub-ops-XXXXXX");
	if (!mkdtemp(o->dir))
		fail_msg("mkdtemp: %s", strerror(errno));
	snprintf(o->path, sizeof(o->path), "%s/hub.sock", o->dir);
	snprintf(o->conf, sizeof(o->conf), "%s/ipchubd.conf", o->dir);
	snprintf(o->log, sizeof(o->log), "%s/ipchubd.log", o->dir);
}

static void ops_fini(struct ops *o)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", o->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", o->dir);
}

static void write_file(const char *path, const char *fmt, ...)
{
	FILE *f = fopen(path, "w");
	va_list ap;

	if (!f)
		fail_msg("%s: %s", path, strerror(errno));
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fclose(f);
}

/* Whether the file contains needle. */
static int file_has(const char *path, const char *needle)
{
	char buf[65536];
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return strstr(buf, needle) != NULL;
}

/* Count occurrences of needle in the file. */
static int file_count(const char *path, const char *needle)
{
	char buf[65536];
	FILE *f = fopen(path, "r");
	size_t n;
	int c = 0;

	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	for (char *p = buf; (p = strstr(p, needle)); p += strlen(needle))
		c++;
	return c;
}

/* Wait until the log has at least `count` occurrences of needle. */
static void wait_log(const struct ops *o, const char *needle, int count)
{
	int64_t deadline = now_ms() + OPS_WAIT_MS;

	while (file_count(o->log, needle) < count) {
		if (now_ms() > deadline)
			fail_msg("no \"%s\" in the broker log", needle);
		usleep(10000);
	}
}

/* Run ipchubd with args to completion; capture stdout+stderr into out.
 * Returns the exit status. */
static int run_ipchubd(const char *const *args, char *out, size_t cap)
{
	const char *argv[32];
	int pfd[2], status;
	size_t n = 0, got = 0;
	pid_t pid;

	argv[n++] = IPCHUBD_PATH;
	for (size_t i = 0; args[i] && n < 31; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(pfd[1], 1);
		dup2(pfd[1], 2);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(pfd[1]);
	for (;;) {
		ssize_t r = read(pfd[0], out + got, cap - 1 - got);

		if (r <= 0 || got + (size_t)r >= cap - 1) {
			if (r > 0)
				got += (size_t)r;
			break;
		}
		got += (size_t)r;
	}
	out[got] = '\0';
	close(pfd[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

/* Start ipchubd with args, stderr to o->log. If lfd >= 0, pass it as
 * fd 3 with LISTEN_FDS=1 and LISTEN_PID=<the child's pid>, the way
 * systemd does. If notify is set, it becomes NOTIFY_SOCKET. Waits for
 * the ready line; returns the path it reports. */
static void ops_start(struct ops *o, const char *const *args, int lfd,
		      const char *notify, char *ready, size_t readycap)
{
	const char *argv[32];
	char line[512];
	size_t n = 0, got = 0;
	int pfd[2];
	pid_t pid;

	argv[n++] = IPCHUBD_PATH;
	for (size_t i = 0; args[i] && n < 31; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char pidbuf[32];
		int logfd = open(o->log, O_WRONLY | O_CREAT | O_APPEND, 0600);

		dup2(pfd[1], 1);
		if (logfd >= 0)
			dup2(logfd, 2);
		unsetenv("LISTEN_FDS");
		unsetenv("LISTEN_PID");
		unsetenv("NOTIFY_SOCKET");
		unsetenv("JOURNAL_STREAM");
		setenv("XDG_CONFIG_HOME", o->dir, 1);
		if (lfd >= 0) {
			if (lfd != 3) {
				dup2(lfd, 3); /* dup2 clears FD_CLOEXEC */
				close(lfd);
			} else {
				fcntl(3, F_SETFD, 0);
			}
			snprintf(pidbuf, sizeof(pidbuf), "%ld", (long)getpid());
			setenv("LISTEN_FDS", "1", 1);
			setenv("LISTEN_PID", pidbuf, 1);
		}
		if (notify)
			setenv("NOTIFY_SOCKET", notify, 1);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(pfd[1]);
	o->hub.pid = pid;
	snprintf(o->hub.dir, sizeof(o->hub.dir), "%s", o->dir);
	snprintf(o->hub.path, sizeof(o->hub.path), "%s", o->path);

	int64_t deadline = now_ms() + OPS_WAIT_MS;
	while (!memchr(line, '\n', got)) {
		int left = (int)(deadline - now_ms());
		struct pollfd p = {.fd = pfd[0], .events = POLLIN};
		ssize_t r;

		if (left <= 0 || poll(&p, 1, left) <= 0)
			fail_msg("ipchubd did not become ready");
		r = read(pfd[0], line + got, sizeof(line) - 1 - got);
		if (r <= 0)
			fail_msg("ipchubd exited before becoming ready");
		got += (size_t)r;
	}
	line[got] = '\0';
	close(pfd[0]);
	if (ready)
		snprintf(ready, readycap, "%s", line);
}

/* Fail with the broker's log when it did not exit with status 0. */
static void expect_clean_exit(const struct ops *o, int status)
{
	char buf[4096] = "";
	FILE *f;
	size_t n = 0;

	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return;
	f = fopen(o->log, "r");
	if (f) {
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	fail_msg("ipchubd: wait status 0x%x; log:\n%s", status, buf);
}

/* SIGTERM and wait (bounded); returns the raw wait status. */
static int ops_stop(struct ops *o)
{
	int status = -1;
	int64_t deadline = now_ms() + OPS_WAIT_MS;

	if (o->hub.pid <= 0)
		return -1;
	kill(o->hub.pid, SIGTERM);
	while (waitpid(o->hub.pid, &status, WNOHANG) == 0) {
		if (now_ms() > deadline) {
			kill(o->hub.pid, SIGKILL);
			waitpid(o->hub.pid, &status, 0);
			fail_msg("ipchubd did not stop on SIGTERM");
		}
		usleep(5000);
	}
	o->hub.pid = 0;
	return status;
}

/* ---- configuration -------------------------------------------------- */

static void test_check_config_precedence(void **state)
{
	struct ops o;
	char out[8192];

	(void)state;
	ops_init(&o);
	write_file(o.conf,
		   "# a comment\n"
		   "queue_hwm = 8M\n"
		   "; another comment\n"
		   "max_names = 10\n"
		   "\n"
		   "log_level = debug\n"
		   "socket = %s\n",
		   o.path);
	const char *args[] = {"--config", o.conf, "--check-config",
			      "--max-names", "7", NULL};
	assert_int_equal(run_ipchubd(args, out, sizeof(out)), 0);
	/* The file sets what the flags do not; the flag wins for max_names. */
	assert_non_null(strstr(out, "queue_hwm = 8388608\n"));
	assert_non_null(strstr(out, "max_names = 7\n"));
	assert_non_null(strstr(out, "log_level = debug\n"));
	assert_non_null(strstr(out, "max_pending = 4096\n")); /* default */
	assert_non_null(strstr(out, o.path));
	/* --check-config does not start a broker. */
	struct stat st;
	assert_int_equal(stat(o.path, &st), -1);

	/* Without the flag, the file's value. */
	const char *args2[] = {"--config", o.conf, "--check-config", NULL};
	assert_int_equal(run_ipchubd(args2, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "max_names = 10\n"));
	ops_fini(&o);
}

static void expect_conf_error(const struct ops *o, const char *content,
			      const char *msg)
{
	char out[8192];
	const char *args[] = {"--config", o->conf, "--check-config", NULL};

	write_file(o->conf, "%s", content);
	assert_int_equal(run_ipchubd(args, out, sizeof(out)), 2);
	if (!strstr(out, msg))
		fail_msg("expected \"%s\" in: %s", msg, out);
}

static void test_config_errors(void **state)
{
	struct ops o;
	char msg[512], out[8192];

	(void)state;
	ops_init(&o);
	snprintf(msg, sizeof(msg), "%s:3: unknown key \"bogus\"", o.conf);
	expect_conf_error(&o, "max_names = 5\n\nbogus = 1\n", msg);
	snprintf(msg, sizeof(msg), "%s:2: key \"max_names\" already set on line 1",
		 o.conf);
	expect_conf_error(&o, "max_names = 5\nmax_names = 6\n", msg);
	snprintf(msg, sizeof(msg), "%s:1: syntax error", o.conf);
	expect_conf_error(&o, "max_names 5\n", msg);
	snprintf(msg, sizeof(msg), "%s:2: sections are not used", o.conf);
	expect_conf_error(&o, "[ipchubd]\nmax_names = 5\n", msg);
	snprintf(msg, sizeof(msg),
		 "%s:1: max_frame: invalid value \"12Q\"", o.conf);
	expect_conf_error(&o, "max_frame = 12Q\n", msg);
	snprintf(msg, sizeof(msg),
		 "%s:1: max_names (--max-names) 0 out of range", o.conf);
	expect_conf_error(&o, "max_names = 0\n", msg);
	snprintf(msg, sizeof(msg), "%s:1: log_level: invalid value \"loud\"",
		 o.conf);
	expect_conf_error(&o, "log_level = loud\n", msg);
	/* Flags are not config keys in their dashed form. */
	snprintf(msg, sizeof(msg), "%s:1: unknown key \"max-names\"", o.conf);
	expect_conf_error(&o, "max-names = 5\n", msg);

	/* An explicit --config must exist. */
	char missing[400];
	snprintf(missing, sizeof(missing), "%s/nope.conf", o.dir);
	const char *args[] = {"--config", missing, "--check-config", NULL};
	assert_int_equal(run_ipchubd(args, out, sizeof(out)), 2);
	assert_non_null(strstr(out, "No such file"));

	/* A bad file also stops a real start, before anything is bound. */
	write_file(o.conf, "bogus = 1\n");
	const char *args2[] = {"--config", o.conf, "--socket", o.path, NULL};
	assert_int_equal(run_ipchubd(args2, out, sizeof(out)), 2);
	assert_non_null(strstr(out, "unknown key"));
	struct stat st;
	assert_int_equal(stat(o.path, &st), -1);

	/* A bad flag value is a command-line error. */
	const char *args3[] = {"--queue-hwm", "lots", "--check-config", NULL};
	assert_int_equal(run_ipchubd(args3, out, sizeof(out)), 2);
	assert_non_null(strstr(out, "--queue-hwm: invalid value \"lots\""));
	ops_fini(&o);
}

static void test_default_config_file(void **state)
{
	struct ops o;
	char path[400], out[8192];
	const char *args[] = {"--check-config", NULL};

	(void)state;
	ops_init(&o);
	/* XDG_CONFIG_HOME/ipchub/ipchubd.conf is read when it exists. */
	setenv("XDG_CONFIG_HOME", o.dir, 1);
	assert_int_equal(run_ipchubd(args, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "# file: (none)"));
	snprintf(path, sizeof(path), "%s/ipchub", o.dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/ipchub/ipchubd.conf", o.dir);
	write_file(path, "max_pending = 99\n");
	assert_int_equal(run_ipchubd(args, out, sizeof(out)), 0);
	assert_non_null(strstr(out, path));
	assert_non_null(strstr(out, "max_pending = 99\n"));
	unsetenv("XDG_CONFIG_HOME");
	ops_fini(&o);
}

/* ---- socket activation and readiness ---------------------------------- */

static void test_socket_activation(void **state)
{
	struct ops o;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char notify[320], ready[512], buf[512];
	int lfd, nfd;
	struct stat st;
	int64_t deadline;
	ssize_t r;

	(void)state;
	ops_init(&o);
	/* The listening socket, made as a socket unit would. */
	assert_true(strlen(o.path) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, o.path, strlen(o.path) + 1);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(lfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 16), 0);
	/* The notification socket, as the service manager has it. */
	snprintf(notify, sizeof(notify), "%s/notify", o.dir);
	struct sockaddr_un na = {.sun_family = AF_UNIX};
	assert_true(strlen(notify) < sizeof(na.sun_path));
	memcpy(na.sun_path, notify, strlen(notify) + 1);
	nfd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(nfd >= 0);
	assert_int_equal(bind(nfd, (struct sockaddr *)&na, sizeof(na)), 0);

	/* --socket names another path: the inherited socket wins. */
	char other[400];
	snprintf(other, sizeof(other), "%s/not-this.sock", o.dir);
	const char *args[] = {"--socket", other, "--log-level", "info", NULL};
	ops_start(&o, args, lfd, notify, ready, sizeof(ready));
	close(lfd);
	assert_non_null(strstr(ready, o.path));

	/* READY=1 arrives on NOTIFY_SOCKET. */
	deadline = now_ms() + OPS_WAIT_MS;
	for (;;) {
		struct pollfd p = {.fd = nfd, .events = POLLIN};
		int left = (int)(deadline - now_ms());

		if (left <= 0 || poll(&p, 1, left) <= 0)
			fail_msg("no READY=1 from ipchubd");
		r = recv(nfd, buf, sizeof(buf) - 1, 0);
		assert_true(r > 0);
		buf[r] = '\0';
		if (strstr(buf, "READY=1"))
			break;
	}
	assert_non_null(strstr(buf, o.path));

	/* Clients reach it through the inherited socket. */
	ipchub *a = hub_client(&o.hub, "svc-a");
	ipchub *b = hub_client(&o.hub, NULL);
	assert_int_equal(ipchub_send(b, "svc-a", NULL, 0, NULL), IPCHUB_OK);
	assert_int_equal(ipchub_flush(b, 5000), IPCHUB_OK);
	ipchub_msg *m = NULL;
	assert_int_equal(ipchub_recv(a, 5000, &m), IPCHUB_OK);
	assert_string_equal(ipchub_msg_to(m), "svc-a");
	ipchub_msg_free(m);
	ipchub_close(a);
	ipchub_close(b);
	assert_int_equal(stat(other, &st), -1);
	assert_true(file_has(o.log, "socket from the service manager"));

	/* On stop: STOPPING=1, and the socket file stays (it is the unit's). */
	int status = ops_stop(&o);
	expect_clean_exit(&o, status);
	int stopping = 0;
	while ((r = recv(nfd, buf, sizeof(buf) - 1, MSG_DONTWAIT)) > 0) {
		buf[r] = '\0';
		if (strstr(buf, "STOPPING=1"))
			stopping = 1;
	}
	assert_true(stopping);
	assert_int_equal(stat(o.path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	close(nfd);
	ops_fini(&o);
}

static void test_socket_activation_rejects_non_listening(void **state)
{
	struct ops o;
	int sv[2], status;
	pid_t pid;

	(void)state;
	ops_init(&o);
	/* A connected (not listening) socket as fd 3 is refused with a
	 * reason, not served. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char pidbuf[32];
		int logfd = open(o.log, O_WRONLY | O_CREAT | O_APPEND, 0600);

		dup2(logfd, 2);
		if (sv[0] == 3)
			fcntl(3, F_SETFD, 0);
		else
			dup2(sv[0], 3); /* dup2 clears FD_CLOEXEC */
		snprintf(pidbuf, sizeof(pidbuf), "%ld", (long)getpid());
		setenv("LISTEN_FDS", "1", 1);
		setenv("LISTEN_PID", pidbuf, 1);
		execl(IPCHUBD_PATH, IPCHUBD_PATH, NULL);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 1);
	assert_true(file_has(o.log, "not a listening Unix stream socket"));
	close(sv[0]);
	close(sv[1]);
	ops_fini(&o);
}

/* ---- signals ---------------------------------------------------------- */

/* Messages the broker has accepted but not yet delivered when SIGTERM
 * arrives are delivered before it exits. */
static void test_sigterm_delivers_queued(void **state)
{
	enum { N = 200, PAD = 8192 }; /* ~1.6 MB: more than socket buffers */
	struct ops o;
	ipchub_pack p;

	(void)state;
	ops_init(&o);
	const char *args[] = {"--socket", o.path, "--log-level", "info", NULL};
	ops_start(&o, args, -1, NULL, NULL, 0);
	ipchub *rx = hub_client(&o.hub, "sink");
	ipchub *tx = hub_client(&o.hub, "source");
	ipchub_pack_init(&p);
	for (uint64_t i = 0; i < N; i++) {
		body_seq(&p, i, PAD);
		assert_int_equal(ipchub_send(tx, "sink", p.buf.data, p.buf.size, NULL),
				 IPCHUB_OK);
	}
	ipchub_pack_destroy(&p);
	assert_int_equal(ipchub_flush(tx, 5000), IPCHUB_OK);
	/* A round trip on the same connection: the broker has read (and
	 * queued for sink) every send before it answers the ping. */
	assert_int_equal(ipchub_ping(tx, 5000, NULL), IPCHUB_OK);

	kill(o.hub.pid, SIGTERM);
	uint64_t next = 0;
	for (;;) {
		ipchub_msg *m = NULL;
		int rc = ipchub_recv(rx, 5000, &m);

		if (rc != IPCHUB_OK) {
			assert_true(rc == IPCHUB_E_SHUTTING_DOWN ||
				    rc == IPCHUB_E_CLOSED);
			break;
		}
		msgpack_unpacked u;
		msgpack_unpacked_init(&u);
		assert_int_equal(ipchub_msg_unpack(m, &u), IPCHUB_OK);
		assert_int_equal(u.data.type, MSGPACK_OBJECT_ARRAY);
		assert_int_equal(u.data.via.array.ptr[0].via.u64, next);
		next++;
		msgpack_unpacked_destroy(&u);
		ipchub_msg_free(m);
	}
	assert_int_equal(next, N);
	ipchub_close(rx);
	ipchub_close(tx);
	int status = ops_stop(&o);
	expect_clean_exit(&o, status);
	/* The socket file it created is gone. */
	struct stat st;
	assert_int_equal(stat(o.path, &st), -1);
	assert_true(file_has(o.log, "shutting down"));
	ops_fini(&o);
}

static void test_sighup_reload(void **state)
{
	struct ops o;
	ipchub_msg *m = NULL;

	(void)state;
	ops_init(&o);
	write_file(o.conf, "socket = %s\nmax_names = 2\nlog_level = info\n",
		   o.path);
	const char *args[] = {"--config", o.conf, NULL};
	ops_start(&o, args, -1, NULL, NULL, 0);
	ipchub *h = hub_client(&o.hub, NULL);
	assert_int_equal(ipchub_register(h, "n1", 5000), IPCHUB_OK);
	assert_int_equal(ipchub_register(h, "n2", 5000), IPCHUB_OK);
	assert_int_equal(ipchub_register(h, "n3", 5000), IPCHUB_E_LIMIT);

	/* A good file: the live setting applies, the restart-only one is
	 * reported and kept. */
	char moved[400];
	snprintf(moved, sizeof(moved), "%s/moved.sock", o.dir);
	write_file(o.conf, "socket = %s\nmax_names = 3\nlog_level = info\n",
		   moved);
	kill(o.hub.pid, SIGHUP);
	wait_log(&o, "configuration reloaded", 1);
	assert_true(file_has(o.log, "reload: max_names: 2 -> 3"));
	assert_true(file_has(o.log, "reload: socket changed"));
	assert_int_equal(ipchub_register(h, "n3", 5000), IPCHUB_OK);
	assert_int_equal(ipchub_register(h, "n4", 5000), IPCHUB_E_LIMIT);

	/* A broken file: rejected with its reason, the broker runs on with
	 * the running configuration. */
	write_file(o.conf, "max_names = 50\nnot_a_key = 1\n");
	kill(o.hub.pid, SIGHUP);
	wait_log(&o, "reload failed", 1);
	assert_true(file_has(o.log, "keeping the running configuration"));
	assert_true(file_has(o.log, ":2: unknown key \"not_a_key\""));
	assert_int_equal(ipchub_ping(h, 5000, NULL), IPCHUB_OK);
	assert_int_equal(ipchub_register(h, "n4", 5000), IPCHUB_E_LIMIT);
	/* An out-of-range value is rejected the same way. */
	write_file(o.conf, "max_names = 0\n");
	kill(o.hub.pid, SIGHUP);
	wait_log(&o, "reload failed", 2);
	assert_int_equal(ipchub_register(h, "n4", 5000), IPCHUB_E_LIMIT);

	/* Still serving new connections on the original socket. */
	ipchub *h2 = hub_client(&o.hub, "late");
	assert_int_equal(ipchub_send(h2, "n1", NULL, 0, NULL), IPCHUB_OK);
	assert_int_equal(ipchub_flush(h2, 5000), IPCHUB_OK);
	assert_int_equal(ipchub_recv(h, 5000, &m), IPCHUB_OK);
	ipchub_msg_free(m);
	ipchub_close(h2);
	ipchub_close(h);
	int status = ops_stop(&o);
	expect_clean_exit(&o, status);
	ops_fini(&o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_config_precedence),
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_default_config_file),
		cmocka_unit_test(test_socket_activation),
		cmocka_unit_test(test_socket_activation_rejects_non_listening),
		cmocka_unit_test(test_sigterm_delivers_queued),
		cmocka_unit_test(test_sighup_reload),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
