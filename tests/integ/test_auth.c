/*
 * test_auth.c - authentication and authorization against a real ipchubd:
 * key proofs (good and every kind of bad one, each answered with the very
 * same bytes), the policy (keys, uids, open names, --require-auth), the
 * handshake timeout and cap, malformed policy files, and SIGHUP reload.
 *
 * Model: each test makes its own scratch directory (keys, policy) and
 * starts its own broker through harness.c. Raw sockets speak the
 * handshake byte by byte where a test needs to send what libipchub never
 * would; key files and signatures come from client/key.c, the same code
 * the library uses. The uid test forks a child that drops to another uid
 * (the suite runs as root); the child reports through its exit status
 * and only the parent asserts. Time bounds only stop a hung test.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "frame.h"
#include "harness.h"
#include "key.h"
#include "transcript.h"

#define OTHER_UID 4242u

struct scratch {
	char dir[64];
	char k1[128], k2[128], pol[128];
	uint8_t pk1[AUTH_PK_LEN], pk2[AUTH_PK_LEN];
	char pk1t[PKTEXT_LEN + 1], pk2t[PKTEXT_LEN + 1];
};

static void scratch_init(struct scratch *s)
{
	char err[256];

	snprintf(s->dir, sizeof(s->dir), "/tmp/ipchub-auth-XXXXXX");
	if (!mkdtemp(s->dir))
		fail_msg("mkdtemp: %s", strerror(errno));
	snprintf(s->k1, sizeof(s->k1), "%s/k1", s->dir);
	snprintf(s->k2, sizeof(s->k2), "%s/k2", s->dir);
	snprintf(s->pol, sizeof(s->pol), "%s/policy", s->dir);
	if (key_generate(s->k1, s->pk1, err, sizeof(err)) ||
	    key_generate(s->k2, s->pk2, err, sizeof(err)))
		fail_msg("keygen: %s", err);
	pktext_format(s->pk1, s->pk1t, sizeof(s->pk1t));
	pktext_format(s->pk2, s->pk2t, sizeof(s->pk2t));
}

static void scratch_fini(struct scratch *s)
{
	char p[192];

	unlink(s->k1);
	unlink(s->k2);
	unlink(s->pol);
	snprintf(p, sizeof(p), "%s/bad", s->dir);
	unlink(p);
	rmdir(s->dir);
}

/* Write a policy file (0600) from printf-style text. */
static void write_file(const char *path, mode_t mode, const char *fmt, ...)
{
	char text[4096];
	va_list ap;
	int fd;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	/* Replace atomically, like an editor, so a reload never sees half. */
	char tmp[256];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	assert_true(fd >= 0);
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(rename(tmp, path), 0);
}

static void load_key(const char *path, struct key *k)
{
	char err[256];

	if (key_load(path, k, err, sizeof(err)))
		fail_msg("key_load: %s", err);
}

static ipchub *client_with_key(const struct hub *hub, const char *key,
			       int *rc_out)
{
	struct ipchub_opts o = {.socket = hub->path, .timeout_ms = 5000,
				.key = key};
	ipchub *h = NULL;
	int rc = ipchub_connect(&o, &h);

	if (rc_out)
		*rc_out = rc;
	else if (rc)
		fail_msg("connect with key %s: %s", key, ipchub_code_name(rc));
	return h;
}

/* ---- raw handshake ---------------------------------------------------- */

struct welcome {
	uint32_t ver;
	uint64_t conn;
	char broker[IPCHUB_BROKER_ID_LEN + 1];
	uint8_t challenge[AUTH_CHALLENGE_LEN];
};

static void decode_b2c(const uint8_t *in, size_t len, struct frame_hdr *h)
{
	struct iovec iov;
	struct mpr r;
	bool body;

	mpr_init_buf(&r, &iov, in, len);
	assert_int_equal(frame_decode(&r, FRAME_B2C, h, &body, NULL), WIRE_E_OK);
}

static void send_hdr(int fd, const struct frame_hdr *h)
{
	uint8_t out[FRAME_ENC_MAX];
	size_t n = frame_encode(h, 0, out, sizeof(out));

	raw_write_all(fd, out, n);
}

static void raw_hello_welcome(int fd, struct welcome *w)
{
	struct frame_hdr h;
	uint8_t in[IPCHUB_MAX_HEADER];
	ssize_t len;

	frame_init(&h, WIRE_HELLO);
	h.ver = IPCHUB_PROTO_VERSION_MAX;
	h.ver_min = IPCHUB_PROTO_VERSION_MIN;
	h.has |= FH(WK_VER) | FH(WK_VER_MIN);
	send_hdr(fd, &h);
	len = raw_read_frame(fd, in, sizeof(in), 5000);
	assert_true(len > 0);
	decode_b2c(in, (size_t)len, &h);
	assert_int_equal(h.kind, WIRE_WELCOME);
	assert_true(h.has & FH(WK_CHALLENGE));
	assert_int_equal(h.broker_len, IPCHUB_BROKER_ID_LEN);
	w->ver = h.ver;
	w->conn = h.conn;
	memcpy(w->broker, h.broker, sizeof(w->broker));
	memcpy(w->challenge, h.challenge, sizeof(w->challenge));
}

/* An AUTH frame: pk, a signature by k over the transcript of w (with
 * challenge replaced when not NULL), sig truncated to sig_len. */
static void build_auth(struct frame_hdr *f, const struct key *k,
		       const uint8_t pk[AUTH_PK_LEN], const struct welcome *w,
		       const uint8_t *challenge, size_t sig_len)
{
	struct transcript_in in;

	frame_init(f, WIRE_AUTH);
	memcpy(f->pk, pk, AUTH_PK_LEN);
	randombytes_buf(f->nonce, sizeof(f->nonce));
	in = (struct transcript_in){
		.ver = w->ver, .broker = w->broker, .conn = w->conn,
		.challenge = challenge ? challenge : w->challenge,
		.nonce = f->nonce, .uid = (uint32_t)geteuid(), .pk = pk,
	};
	key_sign(k, &in, f->sig);
	f->sig_len = (uint16_t)sig_len;
	f->has |= FH(WK_PK) | FH(WK_NONCE) | FH(WK_SIG);
}

/* Read the broker's answer to a refused proof: it must be exactly the
 * generic ERROR, then EOF. Its bytes go to out (for comparing). */
static size_t expect_generic(int fd, uint8_t *out, size_t cap)
{
	struct frame_hdr h;
	ssize_t len = raw_read_frame(fd, out, cap, 5000);

	assert_true(len > 0);
	decode_b2c(out, (size_t)len, &h);
	assert_int_equal(h.kind, WIRE_ERROR);
	assert_int_equal(h.code, WIRE_E_AUTH_FAILED);
	assert_int_equal(h.id, 0);
	assert_string_equal(h.msg, "authentication failed");
	assert_int_equal(raw_wait_eof(fd, 5000), 1);
	return (size_t)len;
}

static void expect_auth_ok(int fd)
{
	struct frame_hdr h;
	uint8_t in[IPCHUB_MAX_HEADER];
	ssize_t len = raw_read_frame(fd, in, sizeof(in), 5000);

	assert_true(len > 0);
	decode_b2c(in, (size_t)len, &h);
	assert_int_equal(h.kind, WIRE_OK);
	assert_int_equal(h.id, 0);
}

/* ---- tests ------------------------------------------------------------- */

static void test_good_key_and_stamps(void **state)
{
	struct scratch s;
	struct hub hub;
	(void)state;

	scratch_init(&s);
	write_file(s.pol, 0600, "# services\nallow svc.* key %s\n", s.pk1t);
	const char *args[] = {"--policy", s.pol, NULL};
	hub_start(&hub, args);

	ipchub *owner = client_with_key(&hub, s.k1, NULL);
	assert_int_equal(ipchub_register(owner, "svc.db", 5000), IPCHUB_OK);
	/* Open names stay open to everyone, with or without a key. */
	ipchub *anon = hub_client(&hub, "open.name");
	assert_int_equal(ipchub_register(anon, "svc.other", 5000),
			 IPCHUB_E_NOT_AUTHORIZED);
	/* Still usable after the refusal (it is not fatal). */
	assert_int_equal(ipchub_register(anon, "open.two", 5000), IPCHUB_OK);

	/* The receiver sees who sent: name, key id and uid. */
	assert_int_equal(ipchub_send(owner, "open.name", NULL, 0, NULL), IPCHUB_OK);
	assert_int_equal(ipchub_flush(owner, 5000), IPCHUB_OK);
	ipchub_msg *m = NULL;
	assert_int_equal(ipchub_recv(anon, 5000, &m), IPCHUB_OK);
	assert_string_equal(ipchub_msg_from(m), "svc.db");
	size_t klen = 0;
	const uint8_t *kid = ipchub_msg_key_id(m, &klen);
	assert_non_null(kid);
	assert_int_equal(klen, AUTH_PK_LEN);
	assert_memory_equal(kid, s.pk1, AUTH_PK_LEN);
	assert_int_equal(ipchub_msg_uid(m), (uint32_t)geteuid());
	ipchub_msg_free(m);

	/* And an unauthenticated sender carries no key id. */
	assert_int_equal(ipchub_send(anon, "svc.db", NULL, 0, NULL), IPCHUB_OK);
	assert_int_equal(ipchub_flush(anon, 5000), IPCHUB_OK);
	assert_int_equal(ipchub_recv(owner, 5000, &m), IPCHUB_OK);
	assert_null(ipchub_msg_key_id(m, &klen));
	assert_int_equal(klen, 0);
	assert_int_equal(ipchub_msg_uid(m), (uint32_t)geteuid());
	ipchub_msg_free(m);

	/* A key the policy does not list cannot authenticate at all. */
	int rc;
	ipchub *bad = client_with_key(&hub, s.k2, &rc);
	assert_null(bad);
	assert_int_equal(rc, IPCHUB_E_AUTH_FAILED);

	ipchub_close(owner);
	ipchub_close(anon);
	assert_int_equal(hub_stop(&hub), 0);
	scratch_fini(&s);
}

static void test_bad_proofs_same_error(void **state)
{
	struct scratch s;
	struct hub hub;
	struct key k1, k2;
	struct welcome w;
	struct frame_hdr f;
	uint8_t first[IPCHUB_MAX_HEADER], got[IPCHUB_MAX_HEADER];
	size_t first_len = 0;
	(void)state;

	scratch_init(&s);
	write_file(s.pol, 0600, "allow svc.* key %s\n", s.pk1t);
	const char *args[] = {"--policy", s.pol, "--require-auth", NULL};
	hub_start(&hub, args);
	load_key(s.k1, &k1);
	load_key(s.k2, &k2);

	enum { WRONG_KEY, UNKNOWN_KEY, FLIPPED, SHORT, OTHER_CHALLENGE,
	       REPLAY, DATA_FIRST, N_CASES };
	for (int c = 0; c < N_CASES; c++) {
		int fd = raw_connect(&hub);
		int orig = -1;
		uint8_t other[AUTH_CHALLENGE_LEN];

		if (c == REPLAY) {
			/* A valid proof made for another connection. */
			struct welcome wo;

			orig = raw_connect(&hub);
			raw_hello_welcome(orig, &wo);
			raw_hello_welcome(fd, &w);
			build_auth(&f, &k1, k1.pk, &wo, NULL, AUTH_SIG_LEN);
		} else {
			raw_hello_welcome(fd, &w);
		}
		switch (c) {
		case WRONG_KEY: /* claims pk1, signed by k2 */
			build_auth(&f, &k2, k1.pk, &w, NULL, AUTH_SIG_LEN);
			break;
		case UNKNOWN_KEY: /* a valid proof of a key not in the policy */
			build_auth(&f, &k2, k2.pk, &w, NULL, AUTH_SIG_LEN);
			break;
		case FLIPPED:
			build_auth(&f, &k1, k1.pk, &w, NULL, AUTH_SIG_LEN);
			f.sig[17] ^= 0x04;
			break;
		case SHORT:
			build_auth(&f, &k1, k1.pk, &w, NULL, AUTH_SIG_LEN - 1);
			break;
		case OTHER_CHALLENGE:
			randombytes_buf(other, sizeof(other));
			build_auth(&f, &k1, k1.pk, &w, other, AUTH_SIG_LEN);
			break;
		case DATA_FIRST:
			frame_init(&f, WIRE_REGISTER);
			f.id = 1;
			f.has |= FH(WK_ID);
			frame_set_str(&f, WK_NAME, "svc.x", 5);
			break;
		default:
			break;
		}
		send_hdr(fd, &f);
		size_t n = expect_generic(fd, got, sizeof(got));
		if (c == 0) {
			memcpy(first, got, n);
			first_len = n;
		} else {
			/* Byte for byte the same answer, whatever the fault. */
			assert_int_equal(n, first_len);
			assert_memory_equal(got, first, n);
		}
		close(fd);
		if (orig >= 0) {
			/* The replayed proof was genuine on its own
			 * connection: the refusal came from the binding. */
			send_hdr(orig, &f);
			expect_auth_ok(orig);
			close(orig);
		}
	}

	/* The good proof works, and then names follow the policy. */
	int fd = raw_connect(&hub);
	raw_hello_welcome(fd, &w);
	build_auth(&f, &k1, k1.pk, &w, NULL, AUTH_SIG_LEN);
	send_hdr(fd, &f);
	expect_auth_ok(fd);
	/* A second AUTH is refused like any other fault. */
	send_hdr(fd, &f);
	expect_generic(fd, got, sizeof(got));
	close(fd);

	/* Without a key, --require-auth refuses the first data frame. */
	ipchub *anon = hub_client(&hub, NULL);
	assert_int_equal(ipchub_register(anon, "open.name", 5000),
			 IPCHUB_E_AUTH_FAILED);
	ipchub_close(anon);

	key_wipe(&k1);
	key_wipe(&k2);
	assert_int_equal(hub_stop(&hub), 0);
	scratch_fini(&s);
}

static void test_key_file_permissions(void **state)
{
	struct scratch s;
	struct hub hub;
	int rc;
	(void)state;

	scratch_init(&s);
	write_file(s.pol, 0600, "allow svc.* key %s\n", s.pk1t);
	const char *args[] = {"--policy", s.pol, NULL};
	hub_start(&hub, args);
	assert_int_equal(chmod(s.k1, 0640), 0);
	assert_null(client_with_key(&hub, s.k1, &rc));
	assert_int_equal(rc, IPCHUB_E_BAD_KEY);
	assert_int_equal(chmod(s.k1, 0604), 0);
	assert_null(client_with_key(&hub, s.k1, &rc));
	assert_int_equal(rc, IPCHUB_E_BAD_KEY);
	assert_int_equal(chmod(s.k1, 0600), 0);
	ipchub *h = client_with_key(&hub, s.k1, NULL);
	assert_int_equal(ipchub_register(h, "svc.a", 5000), IPCHUB_OK);
	ipchub_close(h);

	/* $IPCHUB_KEY is used when the option is NULL. */
	setenv("IPCHUB_KEY", s.k1, 1);
	h = client_with_key(&hub, NULL, NULL);
	assert_int_equal(ipchub_register(h, "svc.b", 5000), IPCHUB_OK);
	ipchub_close(h);
	unsetenv("IPCHUB_KEY");

	/* keygen never overwrites. */
	uint8_t pk[AUTH_PK_LEN];
	char err[256];
	assert_int_equal(key_generate(s.k1, pk, err, sizeof(err)),
			 IPCHUB_E_BAD_KEY);
	struct key k;
	load_key(s.k1, &k);
	assert_memory_equal(k.pk, s.pk1, AUTH_PK_LEN);
	key_wipe(&k);

	assert_int_equal(hub_stop(&hub), 0);
	scratch_fini(&s);
}

/* Child of test_uid_rules: runs as OTHER_UID. Exit status: 0 when every
 * expectation held, else the number of the first that failed. */
static int uid_child(const struct hub *hub)
{
	struct ipchub_opts o = {.socket = hub->path, .timeout_ms = 5000};
	ipchub *h = NULL;

	if (setgroups(0, NULL) < 0 || setgid(OTHER_UID) < 0 ||
	    setuid(OTHER_UID) < 0 || getuid() != OTHER_UID)
		return 1;
	if (ipchub_connect(&o, &h) != IPCHUB_OK)
		return 2;
	if (ipchub_register(h, "uid.svc", 5000) != IPCHUB_OK)
		return 3;
	if (ipchub_register(h, "root.svc", 5000) != IPCHUB_E_NOT_AUTHORIZED)
		return 4;
	if (ipchub_send(h, "root.svc", NULL, 0, NULL) != IPCHUB_OK ||
	    ipchub_flush(h, 5000) != IPCHUB_OK)
		return 5;
	/* Stay until the parent has seen our name and message. */
	ipchub_msg *m = NULL;
	if (ipchub_recv(h, 10000, &m) != IPCHUB_OK)
		return 6;
	ipchub_msg_free(m);
	ipchub_close(h);
	return 0;
}

static void test_uid_rules(void **state)
{
	struct scratch s;
	struct hub hub;
	(void)state;

	if (geteuid() != 0)
		fail_msg("this test needs root (to run a child as another uid)");
	scratch_init(&s);
	write_file(s.pol, 0600,
		   "allow uid.svc uid %u   # only that uid\n"
		   "allow root.svc uid 0\n",
		   OTHER_UID);
	const char *args[] = {"--policy", s.pol, "--socket-mode", "0666", NULL};
	hub_start(&hub, args);
	assert_int_equal(chmod(hub.dir, 0711), 0);

	ipchub *root = hub_client(&hub, "root.svc");
	assert_int_equal(ipchub_register(root, "uid.svc", 5000),
			 IPCHUB_E_NOT_AUTHORIZED);

	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(uid_child(&hub));

	ipchub_msg *m = NULL;
	int rc = ipchub_recv(root, 10000, &m);
	if (rc == IPCHUB_OK) {
		assert_string_equal(ipchub_msg_from(m), "uid.svc");
		assert_int_equal(ipchub_msg_uid(m), OTHER_UID);
		assert_null(ipchub_msg_key_id(m, NULL));
		assert_int_equal(ipchub_send(root, "uid.svc", NULL, 0, NULL),
				 IPCHUB_OK);
		assert_int_equal(ipchub_flush(root, 5000), IPCHUB_OK);
		ipchub_msg_free(m);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_int_equal(rc, IPCHUB_OK);
	ipchub_close(root);
	assert_int_equal(hub_stop(&hub), 0);
	scratch_fini(&s);
}

static void test_handshake_timeout(void **state)
{
	struct scratch s;
	struct hub hub;
	struct welcome w;
	(void)state;

	scratch_init(&s);
	write_file(s.pol, 0600, "allow svc.* key %s\n", s.pk1t);
	const char *args[] = {"--policy", s.pol, "--require-auth",
			      "--handshake-timeout", "200", NULL};
	hub_start(&hub, args);

	/* Silent from the start. */
	int silent = raw_connect(&hub);
	/* HELLO, then no AUTH (required here). */
	int half = raw_connect(&hub);
	raw_hello_welcome(half, &w);
	assert_int_equal(raw_wait_eof(silent, 10000), 1);
	assert_int_equal(raw_wait_eof(half, 10000), 1);
	close(silent);
	close(half);

	/* An authenticated connection is not subject to it. */
	ipchub *h = client_with_key(&hub, s.k1, NULL);
	usleep(400 * 1000);
	assert_int_equal(ipchub_ping(h, 5000, NULL), IPCHUB_OK);
	ipchub_close(h);
	assert_int_equal(hub_stop(&hub), 0);
	scratch_fini(&s);
}

static void test_handshake_flood(void **state)
{
	enum { N = 1000 };
	struct scratch s;
	struct hub hub;
	static int fds[N];
	(void)state;

	scratch_init(&s);
	write_file(s.pol, 0600, "allow svc.* key %s\n", s.pk1t);
	/* Fewer connection slots than the flood: without the handshake cap
	 * (default 256, oldest dropped first) the flood would hold them
	 * all and the real clients would be refused. */
	const char *args[] = {"--policy", s.pol, "--require-auth",
			      "--max-conns", "512", NULL};
	hub_start(&hub, args);

	/* Half stay silent, half stop after HELLO. */
	for (int i = 0; i < N; i++) {
		fds[i] = raw_connect(&hub);
		if (i % 2) {
			struct frame_hdr h;

			frame_init(&h, WIRE_HELLO);
			h.ver = IPCHUB_PROTO_VERSION_MAX;
			h.ver_min = IPCHUB_PROTO_VERSION_MIN;
			h.has |= FH(WK_VER) | FH(WK_VER_MIN);
			send_hdr(fds[i], &h);
		}
	}
	ipchub *svc = client_with_key(&hub, s.k1, NULL);
	assert_int_equal(ipchub_register(svc, "svc.db", 5000), IPCHUB_OK);
	ipchub *cl = client_with_key(&hub, s.k1, NULL);
	assert_int_equal(ipchub_register(cl, "svc.client", 5000), IPCHUB_OK);
	ipchub_pack p;
	ipchub_pack_init(&p);
	body_kv(&p, "q", "ping");
	ipchub_msg *req = NULL, *rep = NULL;
	assert_int_equal(ipchub_send(cl, "svc.db", p.buf.data, p.buf.size, NULL),
			 IPCHUB_OK);
	assert_int_equal(ipchub_flush(cl, 5000), IPCHUB_OK);
	assert_int_equal(ipchub_recv(svc, 5000, &req), IPCHUB_OK);
	assert_string_equal(ipchub_msg_from(req), "svc.client");
	ipchub_msg_free(req);
	ipchub_pack_destroy(&p);
	(void)rep;

	for (int i = 0; i < N; i++)
		close(fds[i]);
	ipchub_close(svc);
	ipchub_close(cl);
	assert_int_equal(hub_stop(&hub), 0);
	scratch_fini(&s);
}

/* Run ipchubd with args; it must exit 1 at once with msg on stderr. */
/* Start ipchubd with args; it must exit with `status` and say `want`. */
static void expect_exit(const char *const *args, const char *want, int status)
{
	int pfd[2];
	char out[2048];
	size_t got = 0;
	const char *argv[16];
	size_t n = 0;

	argv[n++] = IPCHUBD_PATH;
	argv[n++] = "--socket";
	argv[n++] = "@ipchub-test-auth-never";
	for (size_t i = 0; args[i]; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(pfd[1], 2);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(pfd[1]);
	int64_t deadline = now_ms() + 10000;
	for (;;) {
		struct pollfd p = {.fd = pfd[0], .events = POLLIN};
		int left = (int)(deadline - now_ms());
		if (left <= 0 || poll(&p, 1, left) <= 0)
			break;
		ssize_t r = read(pfd[0], out + got, sizeof(out) - 1 - got);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	out[got] = '\0';
	close(pfd[0]);
	int st;
	if (now_ms() > deadline)
		kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (!strstr(out, want))
		fail_msg("expected \"%s\" in: %s", want, out);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), status);
}

/* A policy that cannot be loaded: the broker cannot start (status 1). */
static void expect_start_fails(const char *const *args, const char *want)
{
	expect_exit(args, want, 1);
}

static void test_bad_policy_files(void **state)
{
	struct scratch s;
	char want[256];
	(void)state;

	scratch_init(&s);
	const char *args[] = {"--policy", s.pol, NULL};
	const char *req[] = {"--require-auth", NULL};
	static const struct {
		const char *text;
		unsigned line;
		const char *why;
	} cases[] = {
		{"", 0, "no rules"},
		{"# only comments\n\n   \n", 0, "no rules"},
		{"allow a key %s\n\ndeny b uid 1\n", 3, "unknown directive 'deny'"},
		{"allow a\n", 1, "needs 'key' and/or 'uid'"},
		{"allow a key ed25519:abcd\n", 1, "'key' needs a public key"},
		{"allow a..b uid 1\n", 1, "bad pattern 'a..b'"},
		{"allow a* uid 1\n", 1, "bad pattern 'a*'"},
		{"allow ipchub.x uid 1\n", 1, "reserved"},
		{"# ok\nallow a uid 1\nallow b uid 1 uid 2\n", 3, "'uid' given twice"},
		{"allow a uid nosuchuser-xyz\n", 1, "unknown user"},
		{"allow a uid 1 colour blue\n", 1, "unknown condition 'colour'"},
	};

	/* Missing file. */
	snprintf(want, sizeof(want), "%s: cannot open policy file", s.pol);
	expect_start_fails(args, want);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		write_file(s.pol, 0600, cases[i].text, s.pk1t);
		if (cases[i].line)
			snprintf(want, sizeof(want), "%s:%u: ", s.pol,
				 cases[i].line);
		else
			snprintf(want, sizeof(want), "%s: ", s.pol);
		expect_start_fails(args, want);
		expect_start_fails(args, cases[i].why);
	}
	/* Writable by others: whoever can edit it owns every name. */
	write_file(s.pol, 0666, "allow a uid 1\n");
	expect_start_fails(args, "writable by group or others");
	/* --require-auth needs a policy (the keys that may authenticate). */
	expect_exit(req, "--require-auth needs --policy", 2); /* a configuration error */
	scratch_fini(&s);
}

static void test_reload_revokes(void **state)
{
	struct scratch s;
	struct hub hub;
	(void)state;

	scratch_init(&s);
	write_file(s.pol, 0600, "allow svc.* key %s\nallow keep.* key %s\n",
		   s.pk1t, s.pk1t);
	const char *args[] = {"--policy", s.pol, NULL};
	hub_start(&hub, args);
	ipchub *a = client_with_key(&hub, s.k1, NULL);
	assert_int_equal(ipchub_register(a, "svc.db", 5000), IPCHUB_OK);
	assert_int_equal(ipchub_register(a, "keep.me", 5000), IPCHUB_OK);
	assert_int_equal(ipchub_register(a, "open.x", 5000), IPCHUB_OK);

	/* A broken file: the old policy stays. */
	write_file(s.pol, 0600, "allow svc.* key nonsense\n");
	assert_int_equal(kill(hub.pid, SIGHUP), 0);
	assert_int_equal(ipchub_ping(a, 5000, NULL), IPCHUB_OK);
	ipchub *x = hub_client(&hub, NULL);
	assert_int_equal(ipchub_register(x, "svc.other", 5000),
			 IPCHUB_E_NOT_AUTHORIZED);

	/* Now svc.* belongs to key 2: a loses svc.db and is told. */
	write_file(s.pol, 0600, "allow svc.* key %s\nallow keep.* key %s\n",
		   s.pk2t, s.pk1t);
	assert_int_equal(kill(hub.pid, SIGHUP), 0);
	ipchub_msg *m = NULL;
	assert_int_equal(ipchub_recv(a, 5000, &m), IPCHUB_OK);
	assert_int_equal(ipchub_msg_error(m), IPCHUB_E_NOT_AUTHORIZED);
	assert_non_null(strstr(ipchub_msg_error_text(m), "svc.db"));
	ipchub_msg_free(m);
	/* The name is free now: only key 2 may take it. */
	assert_int_equal(ipchub_register(a, "svc.db", 5000),
			 IPCHUB_E_NOT_AUTHORIZED);
	ipchub *b = client_with_key(&hub, s.k2, NULL);
	assert_int_equal(ipchub_register(b, "svc.db", 5000), IPCHUB_OK);
	/* Names still allowed were kept. */
	assert_int_equal(ipchub_register(x, "keep.me", 5000),
			 IPCHUB_E_NOT_AUTHORIZED);
	assert_int_equal(ipchub_send(x, "keep.me", NULL, 0, NULL), IPCHUB_OK);
	assert_int_equal(ipchub_send(x, "open.x", NULL, 0, NULL), IPCHUB_OK);
	assert_int_equal(ipchub_flush(x, 5000), IPCHUB_OK);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(ipchub_recv(a, 5000, &m), IPCHUB_OK);
		assert_int_equal(ipchub_msg_kind(m), IPCHUB_KIND_SEND);
		ipchub_msg_free(m);
	}

	ipchub_close(a);
	ipchub_close(b);
	ipchub_close(x);
	assert_int_equal(hub_stop(&hub), 0);
	scratch_fini(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_key_and_stamps),
		cmocka_unit_test(test_bad_proofs_same_error),
		cmocka_unit_test(test_key_file_permissions),
		cmocka_unit_test(test_uid_rules),
		cmocka_unit_test(test_handshake_timeout),
		cmocka_unit_test(test_handshake_flood),
		cmocka_unit_test(test_bad_policy_files),
		cmocka_unit_test(test_reload_revokes),
	};

	signal(SIGPIPE, SIG_IGN);
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
