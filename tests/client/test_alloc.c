/*
 * test_alloc.c - allocation behaviour of the codec and of the client's
 * receive path, observed through a malloc wrapper.
 *
 * Model: the test is linked with -Wl,--wrap for malloc, calloc, realloc and
 * free, so every call to them from the statically linked code - proto/,
 * the client library, and msgpack-c (linked from its static archive for
 * this test only) - goes through the counters below, which forward to the
 * real allocator (whatever it is: glibc, or ASan's in the sanitizer
 * build). Counting is armed only around the code under test, so cmocka's
 * own allocations do not interfere. The wrapper can make the n-th armed
 * allocation fail, which the client tests use to inject a failure at
 * every allocation site in turn and then check for a clean error and no
 * leak (live allocations back to zero).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "frame.h"
#include "mpw.h"
#include "msg.h"
#include "sess.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t k, size_t n);
void *__wrap_realloc(void *p, size_t n);
void __wrap_free(void *p);

static struct {
	int armed;
	long calls;   /* malloc/calloc/realloc calls while armed */
	long live;    /* allocations made while armed, not yet freed */
	long fail_at; /* 0-based index of the armed call to fail; -1 none */
	long failed;  /* failures injected */
} A = {.fail_at = -1};

/* Blocks allocated while armed carry a header so that free() can tell
 * them from blocks allocated before arming (counted as live only if
 * ours). */
#define TAG 0x1a110c8dUL
struct tag {
	unsigned long magic;
	unsigned long pad; /* keeps the payload 16-byte aligned */
};

static int inject(void)
{
	long k = A.calls++;
	if (A.fail_at >= 0 && k == A.fail_at) {
		A.failed++;
		return 1;
	}
	return 0;
}

void *__wrap_malloc(size_t n)
{
	if (!A.armed)
		return __real_malloc(n);
	if (inject())
		return NULL;
	struct tag *t = __real_malloc(sizeof(*t) + n);
	if (!t)
		return NULL;
	t->magic = TAG;
	A.live++;
	return t + 1;
}

void *__wrap_calloc(size_t k, size_t n)
{
	if (!A.armed)
		return __real_calloc(k, n);
	if (n && k > (SIZE_MAX - sizeof(struct tag)) / n)
		return NULL;
	void *p = __wrap_malloc(k * n);
	if (p)
		memset(p, 0, k * n);
	return p;
}

static int ours(void *p)
{
	return p && ((struct tag *)p - 1)->magic == TAG;
}

void __wrap_free(void *p)
{
	if (!p)
		return;
	/* Only armed phases free tagged blocks; a block from before arming
	 * is never read at p - 16 unless armed (then all blocks the code
	 * under test frees are its own, by construction of each test). */
	if (A.armed && ours(p)) {
		struct tag *t = (struct tag *)p - 1;
		t->magic = 0;
		A.live--;
		__real_free(t);
		return;
	}
	__real_free(p);
}

void *__wrap_realloc(void *p, size_t n)
{
	if (!A.armed)
		return __real_realloc(p, n);
	if (inject())
		return NULL;
	if (p && !ours(p))
		fail_msg("realloc of a block from before arming");
	struct tag *old = p ? (struct tag *)p - 1 : NULL;
	struct tag *t = __real_realloc(old, sizeof(*t) + n);
	if (!t)
		return NULL;
	if (!old)
		A.live++;
	t->magic = TAG;
	return t + 1;
}

static void arm(long fail_at)
{
	A.calls = A.live = A.failed = 0;
	A.fail_at = fail_at;
	A.armed = 1;
}

static void disarm(void)
{
	A.armed = 0;
}

/* ---- proto allocates nothing -------------------------------------------- */

static void test_proto_never_allocates(void **state)
{
	static uint8_t body[70000];
	uint8_t enc[FRAME_ENC_MAX];
	struct frame_hdr h, back;
	struct mpw w;
	struct iovec iov;
	struct mpr r;
	bool has_body;

	/* A body with every kind of value, nested to the limit. */
	mpw_init(&w, body, sizeof(body));
	for (unsigned d = 0; d < IPCHUB_MAX_BODY_DEPTH - 1; d++)
		mpw_array(&w, 1);
	mpw_map(&w, 3);
	mpw_str(&w, "s", 1);
	mpw_bin(&w, body + 60000, 5000);
	mpw_int(&w, -123456789);
	mpw_uint(&w, 1u << 31);
	mpw_str(&w, "long", 4);
	mpw_str(&w, (const char *)body + 65000, 3000);

	arm(-1);
	for (int kind = WIRE_HELLO; kind <= WIRE_CANCEL; kind++) {
		frame_init(&h, (enum wire_kind)kind);
		h.id = 42;
		h.to_id = 7;
		h.ver = h.ver_min = 1;
		h.code = WIRE_E_REMOTE_ERROR;
		h.has |= FH(WK_ID);
		frame_set_str(&h, WK_TO, "svc.echo", 8);
		frame_set_str(&h, WK_NAME, "svc.name", 8);
		frame_set_str(&h, WK_MSG, "text", 4);
		size_t n = frame_encode(&h, w.len, enc, sizeof(enc));
		mpr_init_buf(&r, &iov, enc + IPCHUB_LEN_PREFIX, n - IPCHUB_LEN_PREFIX);
		(void)frame_decode(&r, FRAME_C2B, &back, &has_body, NULL);
		mpr_init_buf(&r, &iov, enc + IPCHUB_LEN_PREFIX, n - IPCHUB_LEN_PREFIX);
		(void)frame_decode(&r, FRAME_B2C, &back, &has_body, NULL);
		(void)frame_len_check(frame_get_len(enc), IPCHUB_MAX_FRAME_DEFAULT);
	}
	mpr_init_buf(&r, &iov, body, w.len);
	assert_int_equal(frame_body_check(&r, NULL), WIRE_E_OK);
	assert_int_equal(mpr_validate(body, w.len, IPCHUB_MAX_BODY_DEPTH), MPR_OK);
	/* Hostile input: counts far beyond the data, 0xc1, deep nesting. */
	static const uint8_t hostile[][6] = {
		{0xdd, 0xff, 0xff, 0xff, 0xff, 0x01}, {0xdf, 0xff, 0xff, 0xff, 0xff, 0x01},
		{0xdb, 0xff, 0xff, 0xff, 0xff, 'x'},  {0xc1, 0, 0, 0, 0, 0},
		{0x91, 0x91, 0x91, 0x91, 0x91, 0x91},
	};
	for (size_t k = 0; k < sizeof(hostile) / sizeof(hostile[0]); k++) {
		assert_int_not_equal(mpr_validate(hostile[k], 6, IPCHUB_MAX_BODY_DEPTH), MPR_OK);
		mpr_init_buf(&r, &iov, hostile[k], 6);
		(void)frame_decode(&r, FRAME_C2B, &back, &has_body, NULL);
	}
	disarm();
	print_message("proto: %ld allocations during encode/decode/validate\n", A.calls);
	assert_int_equal(A.calls, 0);
	assert_int_equal(A.live, 0);
}

/* ---- the client's receive path under allocation failure ------------------ */

static size_t put_frame(uint8_t *out, size_t cap, const struct frame_hdr *h,
			const void *body, size_t blen)
{
	size_t n = frame_encode(h, blen, out, cap);
	assert_true(n + blen <= cap);
	if (blen)
		memcpy(out + n, body, blen);
	return n + blen;
}

/* WELCOME, then a SEND with a nested body, then an ERROR, then a batch
 * of three such bodies and an ERROR for a batch of two: the bytes a
 * client reads in its first moments. */
static size_t broker_bytes(uint8_t *out, size_t cap)
{
	static const uint8_t body[] = {0x83, 0xa1, 'a', 0x93, 0x01, 0x02, 0x03,
				       0xa1, 'b', 0x81, 0xa1, 'c', 0xc4, 0x02, 0xff, 0xfe,
				       0xa1, 'd', 0xdc, 0x00, 0x02, 0xc0, 0xc3};
	struct frame_hdr h;
	size_t n = 0;

	frame_init(&h, WIRE_WELCOME);
	h.ver = 1;
	h.conn = 9;
	h.max_frame = IPCHUB_MAX_FRAME_DEFAULT;
	h.has |= FH(WK_VER) | FH(WK_CONN) | FH(WK_MAX_FRAME);
	frame_set_str(&h, WK_BROKER, "0123456789abcdef0123456789abcdef", 32);
	n += put_frame(out + n, cap - n, &h, NULL, 0);

	frame_init(&h, WIRE_SEND);
	h.id = 5;
	h.from_id = 3;
	h.has |= FH(WK_ID) | FH(WK_FROM_ID);
	frame_set_str(&h, WK_TO, "me", 2);
	frame_set_str(&h, WK_FROM, "peer", 4);
	n += put_frame(out + n, cap - n, &h, body, sizeof(body));

	frame_init(&h, WIRE_ERROR);
	h.id = 6;
	h.code = WIRE_E_NO_SUCH_PEER;
	h.has |= FH(WK_ID) | FH(WK_CODE);
	frame_set_str(&h, WK_MSG, "nobody", 6);
	n += put_frame(out + n, cap - n, &h, NULL, 0);

	/* Batches (PROTOCOL.md 6.3.1) are split into one event per id. */
	h.id = 7;
	h.count = 2;
	h.has |= FH(WK_COUNT);
	n += put_frame(out + n, cap - n, &h, NULL, 0);

	{
		uint8_t batch[1 + 3 * sizeof(body)];

		batch[0] = 0x93;
		for (int i = 0; i < 3; i++)
			memcpy(batch + 1 + i * sizeof(body), body, sizeof(body));
		frame_init(&h, WIRE_SEND);
		h.id = 10;
		h.from_id = 3;
		h.flags = WF_BATCH;
		h.has |= FH(WK_ID) | FH(WK_FROM_ID) | FH(WK_FLAGS);
		frame_set_str(&h, WK_TO, "me", 2);
		frame_set_str(&h, WK_FROM, "peer", 4);
		n += put_frame(out + n, cap - n, &h, batch, sizeof(batch));
	}
	return n;
}

/* One run of the receive path with the fail_at-th allocation failing.
 * Every failure must surface as IPCHUB_E_NOMEM from the call that needed
 * memory and leave the session usable: the same call, retried once memory
 * is back, succeeds. Nothing may leak. Returns the number of allocation
 * attempts of the run. */
#define RETRY(call)                                   \
	do {                                          \
		rc = (call);                          \
		if (rc == IPCHUB_E_NOMEM) {           \
			nomem++;                      \
			rc = (call);                  \
		}                                     \
	} while (0)

static long run_receive(long fail_at, int *saw_nomem)
{
	static uint8_t bytes[4096];
	size_t n = broker_bytes(bytes, sizeof(bytes));
	struct sess s;
	struct sess_event ev;
	int rc, nomem = 0;
	int welcome = 0, msgs = 0, errors = 0;

	arm(fail_at);
	sess_init(&s);
	RETRY(sess_queue_hello(&s, "test"));
	assert_int_equal(rc, IPCHUB_OK);
	RETRY(sess_feed(&s, bytes, n));
	assert_int_equal(rc, IPCHUB_OK);
	for (;;) {
		RETRY(sess_next_event(&s, &ev));
		assert_int_equal(rc, IPCHUB_OK);
		if (ev.type == SESS_EV_NONE)
			break;
		if (ev.type == SESS_EV_WELCOME) {
			welcome++;
		} else if (ev.type == SESS_EV_MSG) {
			msgpack_unpacked u;
			msgpack_unpacked_init(&u);
			RETRY(ipchub_msg_unpack(ev.msg, &u));
			assert_int_equal(rc, IPCHUB_OK);
			assert_int_equal(u.data.type, MSGPACK_OBJECT_MAP);
			assert_int_equal(u.data.via.map.size, 3);
			assert_string_equal(ipchub_msg_from(ev.msg), "peer");
			msgpack_unpacked_destroy(&u);
			ipchub_msg_free(ev.msg);
			msgs++;
		} else if (ev.type == SESS_EV_ERROR) {
			assert_int_equal(ipchub_msg_error(ev.msg), IPCHUB_E_NO_SUCH_PEER);
			ipchub_msg_free(ev.msg);
			errors++;
		} else {
			fail_msg("unexpected event %d", ev.type);
		}
	}
	sess_destroy(&s);
	disarm();
	assert_int_equal(welcome, 1);
	assert_int_equal(msgs, 4);
	assert_int_equal(errors, 3);
	assert_int_equal(A.live, 0); /* no leak, whichever call failed */
	*saw_nomem = nomem;
	return A.calls;
}

static void test_client_receive_every_allocation_fails(void **state)
{
	int nomem = 0;
	long total = run_receive(-1, &nomem);
	assert_int_equal(nomem, 0);
	assert_true(total > 0);
	for (long k = 0; k < total; k++) {
		run_receive(k, &nomem);
		assert_int_equal(A.failed, 1);
		/* The failure was reported to the caller, never swallowed. */
		assert_int_equal(nomem, 1);
	}
	print_message("client receive path: %ld allocation sites, each failed in turn: "
		      "clean NOMEM, retry succeeds, no leak\n",
		      total);
}

/* msg_from_frame alone: its one allocation failing leaves *out untouched. */
static void test_msg_from_frame_nomem(void **state)
{
	struct frame_hdr h;
	ipchub_msg *m = (ipchub_msg *)&h; /* sentinel */
	frame_init(&h, WIRE_SEND);
	h.id = 1;
	h.has |= FH(WK_ID);
	frame_set_str(&h, WK_TO, "x", 1);
	arm(0);
	assert_int_equal(msg_from_frame(&h, "\xc0", 1, &m), IPCHUB_E_NOMEM);
	disarm();
	assert_ptr_equal(m, (ipchub_msg *)&h);
	assert_int_equal(A.live, 0);
}

/* ipchub_body_unpack: msgpack-c's zone allocation failing is NOMEM, with
 * nothing leaked and *out still destroyable. */
static void test_body_unpack_nomem(void **state)
{
	static const uint8_t body[] = {0x92, 0xa3, 'a', 'b', 'c', 0x81, 0x01, 0x02};
	long total;
	msgpack_unpacked u;

	msgpack_unpacked_init(&u);
	arm(-1);
	assert_int_equal(ipchub_body_unpack(body, sizeof(body), &u), IPCHUB_OK);
	msgpack_unpacked_destroy(&u);
	disarm();
	total = A.calls;
	assert_int_equal(A.live, 0);
	assert_true(total > 0); /* msgpack-c is linked statically and seen */
	for (long k = 0; k < total; k++) {
		msgpack_unpacked_init(&u);
		arm(k);
		int rc = ipchub_body_unpack(body, sizeof(body), &u);
		msgpack_unpacked_destroy(&u);
		disarm();
		assert_int_equal(rc, IPCHUB_E_NOMEM);
		assert_int_equal(A.live, 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_proto_never_allocates),
		cmocka_unit_test(test_client_receive_every_allocation_fails),
		cmocka_unit_test(test_msg_from_frame_nomem),
		cmocka_unit_test(test_body_unpack_nomem),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
