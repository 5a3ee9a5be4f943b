/*
 * dbus_bench.c - peer (e): D-Bus, two clients of a private dbus-daemon,
 * using sd-bus from libsystemd.
 *
 *   bench_dbus thru --size BYTES --count N [--daemon PATH]
 *   bench_dbus rtt  --size BYTES --count N [--samples FILE] [--daemon PATH]
 *
 * Each run writes a bus configuration to a fresh temporary directory,
 * starts `dbus-daemon --config-file=... --nofork --print-address=FD` on a
 * socket in it, connects the clients (separate processes) and removes it
 * all at the end. dbus-broker is not used: its launcher needs systemd and
 * journald, which neither CI nor these machines run (BENCHMARKS.md).
 *
 * thru: the consumer owns org.ipchub.BenchSink and adds a match for the
 * signal org.ipchub.Bench.Data; the producer emits that broadcast signal
 * with the body as a byte array ("ay") of exactly `size` bytes. The bus
 * drops messages to a receiver over its queue limit, so the producer
 * keeps at most two flow-control windows (bench_flow_window) outstanding:
 * after each window it sends org.freedesktop.DBus.Peer.Ping to the
 * consumer (answered by sd-bus itself, in order after the signals).
 * rtt: the responder owns org.ipchub.BenchEcho and answers the method
 * org.ipchub.Bench.Echo(ay) -> ay; the client times sd_bus_call.
 *
 * Ownership: every process owns its one sd_bus; the parent owns the
 * daemon process and the temporary directory.
 */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#define DB_PATH "/org/ipchub/bench"
#define DB_IFACE "org.ipchub.Bench"
#define DB_SINK "org.ipchub.BenchSink"
#define DB_ECHO "org.ipchub.BenchEcho"
/* Method-call timeout: only stops a hung run. */
#define DB_CALL_TIMEOUT_US (30ull * 1000000ull)

static void sdie(const char *what, int r)
{
	bench_die("%s: %s", what, strerror(-r));
}

static char tmpdir[PATH_MAX];
static pid_t daemon_pid, owner_pid;
static void stop_daemon(void);

static void write_config(const char *path, const char *sock)
{
	FILE *f = fopen(path, "w");
	if (!f)
		bench_die("%s: %s", path, strerror(errno));
	fprintf(f,
		"<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
		" \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
		"<busconfig>\n"
		"  <type>session</type>\n"
		"  <listen>unix:path=%s</listen>\n"
		"  <auth>EXTERNAL</auth>\n"
		"  <policy context=\"default\">\n"
		"    <allow send_destination=\"*\" eavesdrop=\"true\"/>\n"
		"    <allow eavesdrop=\"true\"/>\n"
		"    <allow own=\"*\"/>\n"
		"  </policy>\n"
		"  <limit name=\"max_message_size\">134217728</limit>\n"
		"</busconfig>\n",
		sock);
	if (fclose(f) != 0)
		bench_die("%s: %s", path, strerror(errno));
}

/* Start the daemon; returns its address. */
static char *start_daemon(const char *prog)
{
	const char *base = getenv("TMPDIR");
	snprintf(tmpdir, sizeof(tmpdir), "%s/ipchub-dbus-XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(tmpdir))
		bench_die("mkdtemp: %s", strerror(errno));
	char conf[PATH_MAX + 16], sock[PATH_MAX + 16];
	snprintf(conf, sizeof(conf), "%s/bus.conf", tmpdir);
	snprintf(sock, sizeof(sock), "%s/bus.sock", tmpdir);
	write_config(conf, sock);
	int p[2];
	if (pipe(p) < 0)
		bench_die("pipe: %s", strerror(errno));
	owner_pid = getpid();
	atexit(stop_daemon);
	daemon_pid = bench_fork();
	if (daemon_pid == 0) {
		close(p[0]);
		char cf[PATH_MAX + 32], pa[32];
		snprintf(cf, sizeof(cf), "--config-file=%s", conf);
		snprintf(pa, sizeof(pa), "--print-address=%d", p[1]);
		execlp(prog, prog, cf, "--nofork", "--nopidfile", "--nosyslog", pa, (char *)NULL);
		fprintf(stderr, "exec %s: %s\n", prog, strerror(errno));
		_exit(127);
	}
	close(p[1]);
	static char addr[PATH_MAX + 64];
	size_t n = 0;
	while (n + 1 < sizeof(addr)) {
		ssize_t r = read(p[0], addr + n, sizeof(addr) - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
		if (memchr(addr, '\n', n))
			break;
	}
	close(p[0]);
	addr[n] = '\0';
	char *nl = strchr(addr, '\n');
	if (!nl)
		bench_die("%s did not print its address", prog);
	*nl = '\0';
	return addr;
}

static void stop_daemon(void)
{
	if (getpid() != owner_pid || !tmpdir[0])
		return;
	if (daemon_pid > 0) {
		kill(daemon_pid, SIGTERM);
		waitpid(daemon_pid, NULL, 0);
		daemon_pid = 0;
	}
	char f[PATH_MAX + 16];
	snprintf(f, sizeof(f), "%s/bus.conf", tmpdir);
	unlink(f);
	snprintf(f, sizeof(f), "%s/bus.sock", tmpdir);
	unlink(f);
	rmdir(tmpdir);
	tmpdir[0] = '\0';
}

static sd_bus *connect_bus(const char *addr, const char *name)
{
	sd_bus *b = NULL;
	int r = sd_bus_new(&b);
	if (r < 0)
		sdie("sd_bus_new", r);
	if ((r = sd_bus_set_address(b, addr)) < 0 ||
	    (r = sd_bus_set_bus_client(b, 1)) < 0 || (r = sd_bus_start(b)) < 0)
		sdie("connect to the bus", r);
	if (name && (r = sd_bus_request_name(b, name, 0)) < 0)
		sdie("RequestName", r);
	return b;
}

/* Run the bus until *done or an error. */
static void run_until(sd_bus *b, const int *done)
{
	while (!*done) {
		int r = sd_bus_process(b, NULL);
		if (r < 0)
			sdie("sd_bus_process", r);
		if (r > 0)
			continue;
		r = sd_bus_wait(b, UINT64_MAX);
		if (r < 0 && r != -EINTR)
			sdie("sd_bus_wait", r);
	}
}

struct sink {
	size_t size;
	uint64_t count, got, t_first, t_last;
	int done;
};

static int on_data(sd_bus_message *m, void *ud, sd_bus_error *err)
{
	(void)err;
	struct sink *s = ud;
	const void *p;
	size_t n;
	int r = sd_bus_message_read_array(m, 'y', &p, &n);
	if (r < 0 || n != s->size)
		bench_die("dbus consumer: bad signal body (%zu bytes)", n);
	s->t_last = bench_now_ns();
	if (s->got++ == 0)
		s->t_first = s->t_last;
	if (s->got == s->count)
		s->done = 1;
	return 1;
}

static void consumer(const char *addr, size_t size, uint64_t count, int ready)
{
	sd_bus *b = connect_bus(addr, DB_SINK);
	struct sink s = { .size = size, .count = count };
	int r = sd_bus_add_match(b, NULL,
				 "type='signal',interface='" DB_IFACE "',member='Data',path='" DB_PATH "'",
				 on_data, &s);
	if (r < 0)
		sdie("AddMatch", r);
	if (write(ready, "r", 1) != 1)
		bench_die("ready pipe: %s", strerror(errno));
	close(ready);
	run_until(b, &s.done);
	bench_emit_thru("dbus-daemon", "thru", size, count, s.t_first, s.t_last, 1);
	sd_bus_flush_close_unref(b);
}

static int on_pong(sd_bus_message *m, void *ud, sd_bus_error *err)
{
	(void)err;
	if (sd_bus_message_is_method_error(m, NULL))
		bench_die("dbus producer: Ping failed: %s", sd_bus_message_get_error(m)->message);
	(*(uint64_t *)ud)++;
	return 1;
}

static void producer(const char *addr, size_t size, uint64_t count)
{
	sd_bus *b = connect_bus(addr, NULL);
	uint8_t *body = malloc(size);
	if (!body)
		bench_die("out of memory");
	bench_body(body, size);
	uint64_t window = bench_flow_window(size), acked = 0;
	int r;
	for (uint64_t i = 0; i < count; i++) {
		if (i % window == 0 && i) {
			r = sd_bus_call_method_async(b, NULL, DB_SINK, "/", "org.freedesktop.DBus.Peer",
						     "Ping", on_pong, &acked, NULL);
			if (r < 0)
				sdie("Ping", r);
			while (i / window - acked >= 2) {
				r = sd_bus_process(b, NULL);
				if (r < 0)
					sdie("sd_bus_process", r);
				if (r == 0 && (r = sd_bus_wait(b, UINT64_MAX)) < 0 && r != -EINTR)
					sdie("sd_bus_wait", r);
			}
		}
		sd_bus_message *m = NULL;
		if ((r = sd_bus_message_new_signal(b, &m, DB_PATH, DB_IFACE, "Data")) < 0 ||
		    (r = sd_bus_message_append_array(m, 'y', body, size)) < 0)
			sdie("build signal", r);
		while ((r = sd_bus_send(b, m, NULL)) == -ENOBUFS) {
			/* sd-bus's write queue is full: drain it. */
			int f = sd_bus_flush(b);
			if (f < 0)
				sdie("sd_bus_flush", f);
		}
		if (r < 0)
			sdie("sd_bus_send", r);
		sd_bus_message_unref(m);
		/* Keep the write queue moving and answer the bus's own traffic. */
		while ((r = sd_bus_process(b, NULL)) > 0)
			;
		if (r < 0)
			sdie("sd_bus_process", r);
	}
	if ((r = sd_bus_flush(b)) < 0)
		sdie("sd_bus_flush", r);
	free(body);
	sd_bus_flush_close_unref(b);
}

static int on_echo(sd_bus_message *m, void *ud, sd_bus_error *err)
{
	(void)ud;
	(void)err;
	const void *p;
	size_t n;
	int r = sd_bus_message_read_array(m, 'y', &p, &n);
	if (r < 0)
		return r;
	sd_bus_message *reply = NULL;
	if ((r = sd_bus_message_new_method_return(m, &reply)) < 0 ||
	    (r = sd_bus_message_append_array(reply, 'y', p, n)) < 0 ||
	    (r = sd_bus_send(NULL, reply, NULL)) < 0)
		return r;
	sd_bus_message_unref(reply);
	return 1;
}

static const sd_bus_vtable echo_vtable[] = {
	SD_BUS_VTABLE_START(0),
	SD_BUS_METHOD("Echo", "ay", "ay", on_echo, 0),
	SD_BUS_VTABLE_END,
};

static void echo_server(const char *addr, int ready)
{
	sd_bus *b = connect_bus(addr, NULL);
	int r = sd_bus_add_object_vtable(b, NULL, DB_PATH, DB_IFACE, echo_vtable, NULL);
	if (r < 0)
		sdie("add object", r);
	if ((r = sd_bus_request_name(b, DB_ECHO, 0)) < 0)
		sdie("RequestName", r);
	if (write(ready, "r", 1) != 1)
		bench_die("ready pipe: %s", strerror(errno));
	close(ready);
	int never = 0;
	run_until(b, &never);
}

static void rtt_client(const char *addr, size_t size, uint64_t count, const char *samples_path)
{
	sd_bus *b = connect_bus(addr, NULL);
	uint8_t *body = malloc(size);
	uint64_t warm = bench_rtt_warmup(count);
	uint64_t *samples = malloc(count * sizeof(*samples));
	if (!body || !samples)
		bench_die("out of memory");
	bench_body(body, size);
	for (uint64_t i = 0; i < warm + count; i++) {
		uint64_t t0 = bench_now_ns();
		sd_bus_message *m = NULL, *reply = NULL;
		sd_bus_error err = SD_BUS_ERROR_NULL;
		int r;
		if ((r = sd_bus_message_new_method_call(b, &m, DB_ECHO, DB_PATH, DB_IFACE, "Echo")) < 0 ||
		    (r = sd_bus_message_append_array(m, 'y', body, size)) < 0)
			sdie("build call", r);
		if ((r = sd_bus_call(b, m, DB_CALL_TIMEOUT_US, &err, &reply)) < 0)
			bench_die("Echo: %s", err.message ? err.message : strerror(-r));
		const void *p;
		size_t n;
		if (sd_bus_message_read_array(reply, 'y', &p, &n) < 0 || n != size ||
		    memcmp(p, body, size))
			bench_die("dbus rtt: unexpected reply");
		uint64_t t1 = bench_now_ns();
		sd_bus_message_unref(reply);
		sd_bus_message_unref(m);
		if (i >= warm)
			samples[i - warm] = t1 - t0;
	}
	bench_emit_rtt("dbus-daemon", size, samples, count, samples_path);
	free(samples);
	free(body);
	sd_bus_flush_close_unref(b);
}

static void wait_ready(int fd)
{
	char c;
	if (read(fd, &c, 1) != 1)
		bench_die("peer failed to start");
	close(fd);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		bench_die("usage: bench_dbus thru|rtt --size BYTES --count N [--samples FILE] [--daemon PATH]");
	const char *mode = argv[1];
	size_t size = (size_t)bench_opt_u64(argc, argv, "--size", 64);
	uint64_t count = bench_opt_u64(argc, argv, "--count", 100000);
	if (size < 2 || size > BENCH_MAX_BODY || count < 2)
		bench_die("bench_dbus: bad --size or --count");
	int thru = !strcmp(mode, "thru");
	if (!thru && strcmp(mode, "rtt"))
		bench_die("bench_dbus: unknown mode %s", mode);
	char *addr = start_daemon(bench_opt(argc, argv, "--daemon", "dbus-daemon"));
	int p[2];
	if (pipe(p) < 0)
		bench_die("pipe: %s", strerror(errno));
	pid_t pid = bench_fork();
	if (pid == 0) {
		close(p[0]);
		if (thru)
			consumer(addr, size, count, p[1]);
		else
			echo_server(addr, p[1]);
		exit(0);
	}
	close(p[1]);
	wait_ready(p[0]);
	if (thru) {
		producer(addr, size, count);
		bench_wait_ok(pid, "dbus consumer");
	} else {
		rtt_client(addr, size, count, bench_opt(argc, argv, "--samples", NULL));
		kill(pid, SIGTERM);
		waitpid(pid, NULL, 0);
	}
	stop_daemon();
	return 0;
}
