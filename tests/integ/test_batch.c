/*
 * test_batch.c - batched SENDs (PROTOCOL.md 6.3.1) against a real ipchubd.
 *
 * Model: every test starts its own broker (harness.c) and speaks raw
 * frames over plain sockets, so it controls exactly which connection
 * announces BATCH in its HELLO and can send what no library would
 * (malformed batches, BATCH on a REQUEST). A batch is built here from a
 * list of separately encoded messages whose offsets are kept, so a
 * receiver's frames can be compared byte for byte with what was sent.
 * Checked: WELCOME's flags; a batch delivered whole (body untouched,
 * flags BATCH, stamps) to a receiver that announced BATCH, and split into
 * one SEND per message (ids id + i, in order, no flags) for one that did
 * not, including messages over 4 KiB, batches over 64 KiB and over the
 * broker's read chunk (so the split crosses evbuffer chains) and the
 * largest batch allowed; one ERROR with count for a batch that cannot be
 * delivered; BAD_BODY for malformed batch bodies with the connection
 * still usable; BAD_FRAME for BATCH on a REQUEST; QUEUE_FULL with count
 * for NOWAIT; a batch parked on backpressure then split; stats; monitor
 * taps and their filters. Batched PUBLISHes (PROTOCOL.md 10.2.1): whole
 * to a subscriber that announced PUB_BATCH, split for one that did not,
 * refused with one counted ERROR; and under drop-oldest and drop-newest
 * every lost publication is in a GAP placed exactly where it was lost,
 * with the broker's drop counter equal to the GAPs' total. Bounds on time
 * only stop a broken broker from hanging the test.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <msgpack.h>

#include "frame.h"
#include "harness.h"

#define WAIT_MS 10000
/* Receive buffer: the largest frame these tests make a broker send. */
#define RBUF_CAP (4u * 1024u * 1024u)

static uint8_t *rbuf; /* one frame read by read_frame() */

/* ---- frames ------------------------------------------------------------- */

/* A frame read from the broker: header decoded, body in rbuf. */
struct rframe {
	struct frame_hdr h;
	const uint8_t *raw; /* bytes after the length prefix */
	size_t len;         /* their count */
	const uint8_t *body;
	size_t blen;
};

static void read_frame(int fd, struct rframe *f)
{
	ssize_t len = raw_read_frame(fd, rbuf, RBUF_CAP, WAIT_MS);
	struct iovec iov;
	struct mpr r;
	bool has_body;

	if (len <= 0)
		fail_msg("no frame from the broker (%zd)", len);
	mpr_init_buf(&r, &iov, rbuf, (size_t)len);
	assert_int_equal(frame_decode(&r, FRAME_B2C, &f->h, &has_body, NULL),
			 WIRE_E_OK);
	f->raw = rbuf;
	f->len = (size_t)len;
	f->blen = (size_t)mpr_left(&r);
	f->body = rbuf + (size_t)len - f->blen;
}

/* Write prefix + header h + body (blen bytes). */
static void write_frame(int fd, const struct frame_hdr *h, const void *body,
			size_t blen)
{
	uint8_t hdr[FRAME_ENC_MAX];
	size_t n = frame_encode(h, blen, hdr, sizeof(hdr));

	raw_write_all(fd, hdr, n);
	if (blen)
		raw_write_all(fd, body, blen);
}

/* HELLO (with flags when non-zero); returns the WELCOME's conn id and
 * checks that it announces BATCH, and PUB_BATCH if the HELLO did. */
static uint64_t hello(int fd, uint32_t flags)
{
	struct frame_hdr h;
	struct rframe w;

	frame_init(&h, WIRE_HELLO);
	h.ver = IPCHUB_PROTO_VERSION_MAX;
	h.ver_min = IPCHUB_PROTO_VERSION_MIN;
	h.has |= FH(WK_VER) | FH(WK_VER_MIN);
	if (flags) {
		h.flags = flags;
		h.has |= FH(WK_FLAGS);
	}
	write_frame(fd, &h, NULL, 0);
	read_frame(fd, &w);
	assert_int_equal(w.h.kind, WIRE_WELCOME);
	assert_true(w.h.has & FH(WK_FLAGS));
	assert_int_equal(w.h.flags, WF_BATCH | (flags & WF_PUB_BATCH));
	return w.h.conn;
}

static void reg(int fd, const char *name, uint64_t id)
{
	struct frame_hdr h;
	struct rframe r;

	frame_init(&h, WIRE_REGISTER);
	h.id = id;
	h.has |= FH(WK_ID);
	frame_set_str(&h, WK_NAME, name, strlen(name));
	write_frame(fd, &h, NULL, 0);
	read_frame(fd, &r);
	assert_int_equal(r.h.kind, WIRE_OK);
	assert_int_equal(r.h.id, id);
}

/* A connected, named peer: its fd and connection id. */
struct peer {
	int fd;
	uint64_t conn;
};

static struct peer peer(const struct hub *hub, const char *name,
			uint32_t hello_flags)
{
	struct peer p;

	p.fd = raw_connect(hub);
	p.conn = hello(p.fd, hello_flags);
	if (name)
		reg(p.fd, name, 1);
	return p;
}

/* A SEND (key WK_TO) or PUBLISH (WK_TOPIC) {id, key: dst, flags}. */
static void one_way_frame(int fd, int kind, int key, uint64_t id,
			  const char *dst, uint32_t flags, const void *body,
			  size_t blen)
{
	struct frame_hdr h;

	frame_init(&h, kind);
	h.id = id;
	h.has |= FH(WK_ID);
	frame_set_str(&h, key, dst, strlen(dst));
	if (flags) {
		h.flags = flags;
		h.has |= FH(WK_FLAGS);
	}
	write_frame(fd, &h, body, blen);
}

static void send_frame(int fd, uint64_t id, const char *to, uint32_t flags,
		       const void *body, size_t blen)
{
	one_way_frame(fd, WIRE_SEND, WK_TO, id, to, flags, body, blen);
}

/* Next frame must be ERROR {id, code, ref SEND, count} (no count key when
 * count is 0). */
static void expect_error(int fd, uint64_t id, int code, uint64_t count)
{
	struct rframe e;

	read_frame(fd, &e);
	assert_int_equal(e.h.kind, WIRE_ERROR);
	assert_int_equal(e.h.id, id);
	assert_int_equal(e.h.code, code);
	assert_int_equal(e.h.ref, WIRE_SEND);
	if (count) {
		assert_true(e.h.has & FH(WK_COUNT));
		assert_int_equal(e.h.count, count);
	} else {
		assert_false(e.h.has & FH(WK_COUNT));
	}
}

/* ---- batches ------------------------------------------------------------ */

/* A batch body (array 32 + messages) with each message's place in it. */
struct batch {
	msgpack_sbuffer sb;
	uint32_t n;
	size_t *off, *len;
};

/* Message i of a mixed batch: every msgpack family, and every big_every-th
 * one (0: none) a bin of 5000 bytes, over the broker's 4 KiB copy path. */
static void pack_msg(msgpack_packer *pk, uint32_t i, uint32_t big_every)
{
	static uint8_t fill[5000];

	if (big_every && i % big_every == big_every - 1) {
		memset(fill, (int)(i & 0xff), sizeof(fill));
		msgpack_pack_bin_with_body(pk, fill, sizeof(fill));
		return;
	}
	switch (i % 8) {
	case 0:
		msgpack_pack_uint32(pk, i);
		break;
	case 1: {
		char s[32];
		int n = snprintf(s, sizeof(s), "message %u", i);

		msgpack_pack_str_with_body(pk, s, (size_t)n);
		break;
	}
	case 2:
		msgpack_pack_nil(pk);
		break;
	case 3:
		msgpack_pack_map(pk, 2);
		msgpack_pack_str_with_body(pk, "seq", 3);
		msgpack_pack_uint64(pk, (uint64_t)i << 32);
		msgpack_pack_str_with_body(pk, "pad", 3);
		msgpack_pack_bin_with_body(pk, fill, i % 300);
		break;
	case 4:
		msgpack_pack_double(pk, i / 3.0);
		break;
	case 5:
		msgpack_pack_array(pk, 3);
		msgpack_pack_int64(pk, -(int64_t)i);
		msgpack_pack_array(pk, 2);
		msgpack_pack_true(pk);
		msgpack_pack_false(pk);
		msgpack_pack_str_with_body(pk, "x", 1);
		break;
	case 6:
		msgpack_pack_ext_with_body(pk, &i, sizeof(i), 1);
		break;
	default:
		msgpack_pack_str_with_body(pk, "", 0);
		break;
	}
}

static void batch_build(struct batch *b, uint32_t n, uint32_t big_every)
{
	msgpack_packer pk;
	uint8_t a32[5] = { 0xdd };

	msgpack_sbuffer_init(&b->sb);
	msgpack_packer_init(&pk, &b->sb, msgpack_sbuffer_write);
	frame_put_len(a32 + 1, n);
	msgpack_sbuffer_write(&b->sb, (const char *)a32, sizeof(a32));
	b->n = n;
	b->off = calloc(n, sizeof(size_t));
	b->len = calloc(n, sizeof(size_t));
	assert_non_null(b->off);
	assert_non_null(b->len);
	for (uint32_t i = 0; i < n; i++) {
		b->off[i] = b->sb.size;
		pack_msg(&pk, i, big_every);
		b->len[i] = b->sb.size - b->off[i];
	}
}

static void batch_free(struct batch *b)
{
	msgpack_sbuffer_destroy(&b->sb);
	free(b->off);
	free(b->len);
}

/* The stamps of a delivery from `from` (conn from_id) to `to`. */
static void check_stamps(const struct frame_hdr *h, const char *to,
			 const char *from, uint64_t from_id)
{
	assert_int_equal(h->kind, WIRE_SEND);
	assert_true(h->has & FH(WK_TO));
	assert_string_equal(h->to, to);
	assert_true(h->has & FH(WK_FROM));
	assert_string_equal(h->from, from);
	assert_int_equal(h->from_id, from_id);
	assert_true(h->has & FH(WK_UID));
	assert_int_equal(h->uid, (uint32_t)getuid());
}

/* rx announced BATCH: the next frame is the whole batch. Returns the
 * delivered frame's length (prefix included). */
static size_t expect_whole(int fd, const struct batch *b, uint64_t id,
			   const char *to, const char *from, uint64_t from_id)
{
	struct rframe f;

	read_frame(fd, &f);
	check_stamps(&f.h, to, from, from_id);
	assert_int_equal(f.h.id, id);
	assert_true(f.h.has & FH(WK_FLAGS));
	assert_int_equal(f.h.flags, WF_BATCH); /* never NOWAIT */
	assert_int_equal(f.blen, b->sb.size);
	assert_memory_equal(f.body, b->sb.data, b->sb.size);
	return IPCHUB_LEN_PREFIX + f.len;
}

/* rx did not announce BATCH: the next b->n frames are the messages.
 * Returns their total length (prefixes included). */
static size_t expect_split(int fd, const struct batch *b, uint64_t id,
			   const char *to, const char *from, uint64_t from_id)
{
	size_t total = 0;

	for (uint32_t i = 0; i < b->n; i++) {
		struct rframe f;

		read_frame(fd, &f);
		check_stamps(&f.h, to, from, from_id);
		assert_int_equal(f.h.id, id + i);
		assert_false(f.h.has & FH(WK_FLAGS));
		assert_int_equal(f.blen, b->len[i]);
		assert_memory_equal(f.body, b->sb.data + b->off[i], b->len[i]);
		total += IPCHUB_LEN_PREFIX + f.len;
	}
	return total;
}

/* ---- tests -------------------------------------------------------------- */

static void test_whole_and_split(void **state)
{
	(void)state;
	struct hub hub;
	hub_start(&hub, NULL);
	struct peer tx = peer(&hub, "tx", 0);
	struct peer rx = peer(&hub, "rx", WF_BATCH);
	struct peer plain = peer(&hub, "plain", 0);
	struct batch b, big, one;

	/* 1000 mixed messages, every 16th 5000 bytes: about 330 KiB, more
	 * than the broker reads at once (256 KiB), so the batch lies in two
	 * chains at least. NOWAIT is never passed on. */
	batch_build(&b, 1000, 16);
	assert_true(b.sb.size > IPCHUB_READ_CHUNK);
	send_frame(tx.fd, 100, "rx", WF_BATCH | WF_NOWAIT, b.sb.data, b.sb.size);
	expect_whole(rx.fd, &b, 100, "rx", "tx", tx.conn);
	send_frame(tx.fd, 2000, "plain", WF_BATCH | WF_NOWAIT, b.sb.data,
		   b.sb.size);
	expect_split(plain.fd, &b, 2000, "plain", "tx", tx.conn);

	/* A batch of small messages over 64 KiB, and a batch of one. */
	batch_build(&big, 9000, 0);
	assert_true(big.sb.size > 64 * 1024);
	send_frame(tx.fd, 5000, "plain", WF_BATCH, big.sb.data, big.sb.size);
	send_frame(tx.fd, 20000, "rx", WF_BATCH, big.sb.data, big.sb.size);
	batch_build(&one, 1, 0);
	send_frame(tx.fd, 30000, "plain", WF_BATCH, one.sb.data, one.sb.size);
	expect_split(plain.fd, &big, 5000, "plain", "tx", tx.conn);
	expect_whole(rx.fd, &big, 20000, "rx", "tx", tx.conn);
	expect_split(plain.fd, &one, 30000, "plain", "tx", tx.conn);

	/* A batch to the sender's own name, which did not announce BATCH. */
	send_frame(tx.fd, 40000, "tx", WF_BATCH, b.sb.data, b.sb.size);
	expect_split(tx.fd, &b, 40000, "tx", "tx", tx.conn);

	/* Ids count on past 2^64 - 1 like any uint64 counter. */
	{
		struct batch three;
		struct rframe f;

		batch_build(&three, 3, 0);
		send_frame(tx.fd, UINT64_MAX, "plain", WF_BATCH, three.sb.data,
			   three.sb.size);
		for (uint64_t k = 0; k < 3; k++) {
			read_frame(plain.fd, &f);
			assert_int_equal(f.h.id, UINT64_MAX + k);
		}
		batch_free(&three);
	}
	batch_free(&b);
	batch_free(&big);
	batch_free(&one);
	close(tx.fd);
	close(rx.fd);
	close(plain.fd);
	assert_int_equal(hub_stop(&hub), 0);
}

static void test_largest_batch(void **state)
{
	(void)state;
	struct hub hub;
	hub_start(&hub, NULL);
	struct peer tx = peer(&hub, "tx", 0);
	struct peer rx = peer(&hub, "rx", WF_BATCH);
	struct peer plain = peer(&hub, "plain", 0);
	struct batch b;

	batch_build(&b, IPCHUB_MAX_BATCH, 0);
	send_frame(tx.fd, 1, "rx", WF_BATCH, b.sb.data, b.sb.size);
	send_frame(tx.fd, 1, "plain", WF_BATCH, b.sb.data, b.sb.size);
	expect_whole(rx.fd, &b, 1, "rx", "tx", tx.conn);
	expect_split(plain.fd, &b, 1, "plain", "tx", tx.conn);
	batch_free(&b);
	close(tx.fd);
	close(rx.fd);
	close(plain.fd);
	assert_int_equal(hub_stop(&hub), 0);
}

static void test_undeliverable(void **state)
{
	(void)state;
	struct hub hub;
	hub_start(&hub, NULL);
	struct peer tx = peer(&hub, "tx", 0);
	struct peer rx = peer(&hub, "rx", 0);
	struct batch b;
	struct rframe f;

	batch_build(&b, 1000, 100);
	send_frame(tx.fd, 10, "nobody", WF_BATCH, b.sb.data, b.sb.size);
	read_frame(tx.fd, &f);
	assert_int_equal(f.h.kind, WIRE_ERROR);
	assert_int_equal(f.h.id, 10);
	assert_int_equal(f.h.code, WIRE_E_NO_SUCH_PEER);
	assert_int_equal(f.h.ref, WIRE_SEND);
	assert_string_equal(f.h.to, "nobody");
	assert_int_equal(f.h.count, 1000);
	send_frame(tx.fd, 20, "bad..name", WF_BATCH, b.sb.data, b.sb.size);
	expect_error(tx.fd, 20, WIRE_E_BAD_NAME, 1000);
	send_frame(tx.fd, 30, "ipchub.nope", WF_BATCH, b.sb.data, b.sb.size);
	expect_error(tx.fd, 30, WIRE_E_NO_SUCH_PEER, 1000);
	/* A single SEND's errors still have no count. */
	send_frame(tx.fd, 40, "nobody", 0, "\xc0", 1);
	expect_error(tx.fd, 40, WIRE_E_NO_SUCH_PEER, 0);
	/* A batch to a broker service is taken like a SEND to it: no answer;
	 * the next frame is handled. */
	send_frame(tx.fd, 50, WIRE_SVC_PING, WF_BATCH, b.sb.data, b.sb.size);
	send_frame(tx.fd, 60, "rx", 0, "\x01", 1);
	read_frame(rx.fd, &f);
	assert_int_equal(f.h.id, 60);
	batch_free(&b);
	close(tx.fd);
	close(rx.fd);
	assert_int_equal(hub_stop(&hub), 0);
}

static void test_bad_bodies(void **state)
{
	(void)state;
	static const struct {
		const char *what;
		const char *body;
		size_t len;
		uint64_t count; /* in the ERROR; 0: none */
	} bad[] = {
#define B(w, s, c) { w, s, sizeof(s) - 1, c }
		B("not an array", "\x81\xa1k\x01", 0),
		B("a scalar", "\x05", 0),
		B("byte 0xc1", "\xc1", 0),
		B("empty array", "\x90", 0),
		B("empty array 32", "\xdd\x00\x00\x00\x00", 0),
		B("array header cut", "\xdd\x00\x00", 0),
		B("more elements declared than bytes", "\x9f\x01\x02", 0),
		B("truncated element", "\x93\x01\x02\xa5" "ab", 3),
		B("element with 0xc1", "\x92\x01\xc1", 2),
		B("trailing bytes", "\x92\x01\x02\x03", 2),
		B("two arrays", "\x91\x01\x91\x01", 1),
#undef B
	};
	struct hub hub;
	hub_start(&hub, NULL);
	struct peer tx = peer(&hub, "tx", 0);
	struct peer rx = peer(&hub, "rx", WF_BATCH);
	uint64_t id = 100;
	struct rframe f;

	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++, id += 2) {
		print_message("bad batch: %s\n", bad[k].what);
		send_frame(tx.fd, id, "rx", WF_BATCH, bad[k].body, bad[k].len);
		expect_error(tx.fd, id, WIRE_E_BAD_BODY, bad[k].count);
		/* The connection goes on: the next SEND is delivered. */
		send_frame(tx.fd, id + 1, "rx", 0, "\x07", 1);
		read_frame(rx.fd, &f);
		assert_int_equal(f.h.id, id + 1);
		assert_false(f.h.has & FH(WK_FLAGS));
	}

	/* A message nested 33 levels deep (the array does not count) ... */
	{
		/* [1, [[[...nil...]]]]: 2 bytes, then depth + 1 bytes. */
		uint8_t deep[2 + IPCHUB_MAX_BODY_DEPTH + 2];
		size_t n33 = sizeof(deep), n32 = sizeof(deep) - 1;

		deep[0] = 0x92;
		deep[1] = 0x01;
		memset(deep + 2, 0x91, IPCHUB_MAX_BODY_DEPTH + 1);
		deep[n33 - 1] = 0xc0;
		send_frame(tx.fd, 500, "rx", WF_BATCH, deep, n33);
		expect_error(tx.fd, 500, WIRE_E_BAD_BODY, 2);
		/* ... while 32 levels are fine. */
		deep[n32 - 1] = 0xc0;
		send_frame(tx.fd, 501, "rx", WF_BATCH, deep, n32);
		read_frame(rx.fd, &f);
		assert_int_equal(f.h.id, 501);
		assert_int_equal(f.blen, n32);
	}

	/* One message more than allowed: no count (it is not one the client
	 * could have meant). */
	{
		size_t n = IPCHUB_MAX_BATCH + 1u;
		uint8_t *body = malloc(5 + n);

		assert_non_null(body);
		body[0] = 0xdd;
		frame_put_len(body + 1, (uint32_t)n);
		memset(body + 5, 0xc0, n);
		send_frame(tx.fd, 600, "rx", WF_BATCH, body, 5 + n);
		expect_error(tx.fd, 600, WIRE_E_BAD_BODY, 0);
		free(body);
	}

	/* BATCH without a body. */
	send_frame(tx.fd, 700, "rx", WF_BATCH, NULL, 0);
	expect_error(tx.fd, 700, WIRE_E_BAD_BODY, 0);

	/* Nothing of the bad batches reached rx. */
	send_frame(tx.fd, 800, "rx", 0, "\x08", 1);
	read_frame(rx.fd, &f);
	assert_int_equal(f.h.id, 800);
	close(tx.fd);
	close(rx.fd);
	assert_int_equal(hub_stop(&hub), 0);
}

static void test_batch_flag_elsewhere(void **state)
{
	(void)state;
	struct hub hub;
	hub_start(&hub, NULL);
	struct peer tx = peer(&hub, "tx", 0);
	struct frame_hdr h;
	struct rframe f;

	/* BATCH on a REQUEST is a malformed frame: fatal. */
	frame_init(&h, WIRE_REQUEST);
	h.id = 1;
	h.flags = WF_BATCH;
	h.has |= FH(WK_ID) | FH(WK_FLAGS);
	frame_set_str(&h, WK_TO, "tx", 2);
	write_frame(tx.fd, &h, "\x91\x01", 2);
	read_frame(tx.fd, &f);
	assert_int_equal(f.h.kind, WIRE_ERROR);
	assert_int_equal(f.h.code, WIRE_E_BAD_FRAME);
	assert_true(raw_wait_eof(tx.fd, WAIT_MS));
	close(tx.fd);

	/* So is a HELLO flag other than BATCH. */
	{
		int fd = raw_connect(&hub);

		frame_init(&h, WIRE_HELLO);
		h.ver = IPCHUB_PROTO_VERSION_MAX;
		h.ver_min = IPCHUB_PROTO_VERSION_MIN;
		h.flags = WF_NOWAIT;
		h.has |= FH(WK_VER) | FH(WK_VER_MIN) | FH(WK_FLAGS);
		write_frame(fd, &h, NULL, 0);
		read_frame(fd, &f);
		assert_int_equal(f.h.kind, WIRE_ERROR);
		assert_int_equal(f.h.code, WIRE_E_BAD_FRAME);
		assert_true(raw_wait_eof(fd, WAIT_MS));
		close(fd);
	}
	assert_int_equal(hub_stop(&hub), 0);
}

/* Bytes of the frame fill_queue() sends: far more than a socket buffer
 * takes (about 200 KiB), so with --queue-hwm 65536 the receiver's queue
 * stays over the mark for as long as it does not read. */
#define FILL_LEN (2u * 1024u * 1024u)

/* Send FILL_LEN bytes from fd to `to` as SEND id 1 (a bin body) and
 * return once the broker has routed them: it answers the PING that
 * follows only after (a connection's frames keep their order). */
static void fill_queue(int fd, const char *to)
{
	uint8_t *fill = calloc(1, FILL_LEN);
	struct frame_hdr h;
	struct rframe f;

	assert_non_null(fill);
	fill[0] = 0xc6;
	frame_put_len(fill + 1, FILL_LEN - 5);
	send_frame(fd, 1, to, 0, fill, FILL_LEN);
	free(fill);
	frame_init(&h, WIRE_PING);
	h.id = 2;
	h.has |= FH(WK_ID);
	write_frame(fd, &h, NULL, 0);
	read_frame(fd, &f);
	assert_int_equal(f.h.kind, WIRE_PONG);
}

static void test_nowait_queue_full(void **state)
{
	(void)state;
	static const char *const args[] = { "--queue-hwm", "65536", NULL };
	struct hub hub;
	hub_start(&hub, args);
	struct peer tx = peer(&hub, "tx", 0);
	struct peer full = peer(&hub, "full", WF_BATCH);
	struct batch b;
	struct rframe f;

	fill_queue(tx.fd, "full");
	batch_build(&b, 1000, 0);
	send_frame(tx.fd, 1000000, "full", WF_BATCH | WF_NOWAIT, b.sb.data,
		   b.sb.size);
	read_frame(tx.fd, &f);
	assert_int_equal(f.h.kind, WIRE_ERROR);
	assert_int_equal(f.h.id, 1000000);
	assert_int_equal(f.h.code, WIRE_E_QUEUE_FULL);
	assert_int_equal(f.h.ref, WIRE_SEND);
	assert_true(f.h.has & FH(WK_COUNT));
	assert_int_equal(f.h.count, 1000);
	assert_string_equal(f.h.to, "full");
	batch_free(&b);
	close(tx.fd);
	close(full.fd);
	assert_int_equal(hub_stop(&hub), 0);
}

/* Stats reply over a raw connection: messages_routed, batches_routed,
 * bytes_routed. */
struct routed {
	uint64_t msgs, batches, bytes;
};

static uint64_t map_u(const msgpack_object *o, const char *k)
{
	for (uint32_t i = 0; i < o->via.map.size; i++) {
		const msgpack_object_kv *kv = &o->via.map.ptr[i];

		if (kv->key.type == MSGPACK_OBJECT_STR &&
		    kv->key.via.str.size == strlen(k) &&
		    memcmp(kv->key.via.str.ptr, k, strlen(k)) == 0) {
			assert_int_equal(kv->val.type,
					 MSGPACK_OBJECT_POSITIVE_INTEGER);
			return kv->val.via.u64;
		}
	}
	fail_msg("stats: no '%s'", k);
	return 0;
}

static struct routed get_routed(int fd)
{
	static uint64_t id = 1000;
	struct frame_hdr h;
	struct rframe f;
	msgpack_unpacked u;
	struct routed r;

	frame_init(&h, WIRE_REQUEST);
	h.id = ++id;
	h.has |= FH(WK_ID);
	frame_set_str(&h, WK_TO, WIRE_SVC_STATS, strlen(WIRE_SVC_STATS));
	write_frame(fd, &h, NULL, 0);
	read_frame(fd, &f);
	assert_int_equal(f.h.kind, WIRE_REPLY);
	assert_int_equal(f.h.id, id);
	msgpack_unpacked_init(&u);
	assert_int_equal(msgpack_unpack_next(&u, (const char *)f.body, f.blen,
					     NULL),
			 MSGPACK_UNPACK_SUCCESS);
	assert_int_equal(u.data.type, MSGPACK_OBJECT_MAP);
	r.msgs = map_u(&u.data, "messages_routed");
	r.batches = map_u(&u.data, "batches_routed");
	r.bytes = map_u(&u.data, "bytes_routed");
	msgpack_unpacked_destroy(&u);
	return r;
}

static void test_stats(void **state)
{
	(void)state;
	struct hub hub;
	hub_start(&hub, NULL);
	struct peer tx = peer(&hub, "tx", 0);
	struct peer rx = peer(&hub, "rx", WF_BATCH);
	struct peer plain = peer(&hub, "plain", 0);
	struct peer obs = peer(&hub, NULL, 0);
	struct batch b;
	struct routed r0, r1, r2, r3;
	size_t bytes;

	batch_build(&b, 777, 50);
	r0 = get_routed(obs.fd);
	send_frame(tx.fd, 1, "rx", WF_BATCH, b.sb.data, b.sb.size);
	bytes = expect_whole(rx.fd, &b, 1, "rx", "tx", tx.conn);
	r1 = get_routed(obs.fd);
	assert_int_equal(r1.msgs - r0.msgs, 777);
	assert_int_equal(r1.batches - r0.batches, 1);
	assert_int_equal(r1.bytes - r0.bytes, bytes);

	send_frame(tx.fd, 1, "plain", WF_BATCH, b.sb.data, b.sb.size);
	bytes = expect_split(plain.fd, &b, 1, "plain", "tx", tx.conn);
	r2 = get_routed(obs.fd);
	assert_int_equal(r2.msgs - r1.msgs, 777);
	assert_int_equal(r2.batches - r1.batches, 1);
	assert_int_equal(r2.bytes - r1.bytes, bytes);

	/* A single SEND counts one message and no batch. */
	send_frame(tx.fd, 2, "plain", 0, "\x01", 1);
	read_frame(plain.fd, &(struct rframe){ 0 });
	r3 = get_routed(obs.fd);
	assert_int_equal(r3.msgs - r2.msgs, 1);
	assert_int_equal(r3.batches, r2.batches);
	batch_free(&b);
	close(tx.fd);
	close(rx.fd);
	close(plain.fd);
	close(obs.fd);
	assert_int_equal(hub_stop(&hub), 0);
}

/* MONITOR {id, filter} on fd; expects OK. */
static void tap(int fd, uint64_t id, const char *filter)
{
	struct frame_hdr h;
	struct rframe f;

	frame_init(&h, WIRE_MONITOR);
	h.id = id;
	h.has |= FH(WK_ID);
	frame_set_str(&h, WK_FILTER, filter, strlen(filter));
	write_frame(fd, &h, NULL, 0);
	read_frame(fd, &f);
	assert_int_equal(f.h.kind, WIRE_OK);
	assert_int_equal(f.h.id, id);
}

/* The next monitor copy: tap sub, connection, direction; its frame bytes
 * (after the length prefix) are copied to *frame (caller frees). */
static size_t expect_copy(int fd, uint64_t sub, uint64_t conn, int event,
			  uint8_t **frame)
{
	struct rframe f;
	size_t n;

	read_frame(fd, &f);
	assert_int_equal(f.h.kind, WIRE_MONITOR);
	assert_int_equal(f.h.sub, sub);
	assert_int_equal(f.h.conn, conn);
	assert_int_equal(f.h.event, event);
	assert_false(f.h.has & FH(WK_COUNT)); /* not cut */
	assert_true(f.blen >= 5);
	assert_int_equal(f.body[0], 0xc6);
	n = frame_get_len(f.body + 1);
	assert_int_equal(n + 5, f.blen);
	*frame = malloc(n);
	assert_non_null(*frame);
	memcpy(*frame, f.body + 5, n);
	return n;
}

/* A frame as the client wrote it: header h then body. */
static void check_written(const uint8_t *copy, size_t n,
			  const struct frame_hdr *h, const void *body,
			  size_t blen)
{
	uint8_t hdr[FRAME_ENC_MAX];
	size_t hn = frame_encode(h, blen, hdr, sizeof(hdr));

	assert_int_equal(n, hn - IPCHUB_LEN_PREFIX + blen);
	assert_memory_equal(copy, hdr + IPCHUB_LEN_PREFIX, hn - IPCHUB_LEN_PREFIX);
	assert_memory_equal(copy + hn - IPCHUB_LEN_PREFIX, body, blen);
}

static void test_monitor(void **state)
{
	(void)state;
	struct hub hub;
	hub_start(&hub, NULL);
	struct peer tx = peer(&hub, "tx", 0);
	struct peer rx = peer(&hub, "rx", WF_BATCH);
	struct peer plain = peer(&hub, "plain", 0);
	struct peer mon = peer(&hub, NULL, 0);
	struct frame_hdr sent;
	struct batch b;
	uint8_t *copy;
	size_t n;

	tap(mon.fd, 1, "name=rx kind=SEND");
	tap(mon.fd, 2, "name=plain");
	tap(mon.fd, 3, "kind=REQUEST");
	batch_build(&b, 60, 20);
	send_frame(tx.fd, 7, "rx", WF_BATCH, b.sb.data, b.sb.size);
	send_frame(tx.fd, 70, "plain", WF_BATCH, b.sb.data, b.sb.size);
	{
		struct frame_hdr h;

		frame_init(&h, WIRE_REQUEST);
		h.id = 99;
		h.has |= FH(WK_ID);
		frame_set_str(&h, WK_TO, WIRE_SVC_PING, strlen(WIRE_SVC_PING));
		write_frame(tx.fd, &h, NULL, 0);
	}

	/* Tap 1: the batch as read from tx, then as written to rx. */
	frame_init(&sent, WIRE_SEND);
	sent.id = 7;
	sent.flags = WF_BATCH;
	sent.has |= FH(WK_ID) | FH(WK_FLAGS);
	frame_set_str(&sent, WK_TO, "rx", 2);
	n = expect_copy(mon.fd, 1, tx.conn, WIRE_MONITOR_IN, &copy);
	check_written(copy, n, &sent, b.sb.data, b.sb.size);
	free(copy);
	n = expect_copy(mon.fd, 1, rx.conn, WIRE_MONITOR_OUT, &copy);
	{
		struct rframe f;

		read_frame(rx.fd, &f);
		assert_int_equal(f.h.flags, WF_BATCH);
		assert_int_equal(n, f.len);
		assert_memory_equal(copy, f.raw, n);
	}
	free(copy);

	/* Tap 2: the batch read from tx, then each message written to plain,
	 * byte for byte what plain reads. */
	sent.id = 70;
	frame_set_str(&sent, WK_TO, "plain", 5);
	n = expect_copy(mon.fd, 2, tx.conn, WIRE_MONITOR_IN, &copy);
	check_written(copy, n, &sent, b.sb.data, b.sb.size);
	free(copy);
	for (uint32_t i = 0; i < b.n; i++) {
		struct rframe f;

		n = expect_copy(mon.fd, 2, plain.conn, WIRE_MONITOR_OUT, &copy);
		read_frame(plain.fd, &f);
		assert_int_equal(f.h.id, 70 + i);
		assert_int_equal(f.blen, b.len[i]);
		assert_int_equal(n, f.len);
		assert_memory_equal(copy, f.raw, n);
		free(copy);
	}

	/* Tap 3 took none of that: its first copy is the REQUEST. */
	n = expect_copy(mon.fd, 3, tx.conn, WIRE_MONITOR_IN, &copy);
	{
		struct iovec iov;
		struct mpr r;
		struct frame_hdr h;
		bool body;

		mpr_init_buf(&r, &iov, copy, n);
		assert_int_equal(frame_decode(&r, FRAME_C2B, &h, &body, NULL),
				 WIRE_E_OK);
		assert_int_equal(h.kind, WIRE_REQUEST);
		assert_int_equal(h.id, 99);
	}
	free(copy);
	batch_free(&b);
	close(tx.fd);
	close(rx.fd);
	close(plain.fd);
	close(mon.fd);
	assert_int_equal(hub_stop(&hub), 0);
}

/* A batch that finds its receiver over the high-water mark parks its
 * sender; when the receiver reads, the parked batch (not checked again)
 * is still split into its messages. */
static void test_parked_batch(void **state)
{
	(void)state;
	static const char *const args[] = { "--queue-hwm", "65536", NULL };
	struct hub hub;
	hub_start(&hub, args);
	struct peer filler = peer(&hub, "filler", 0);
	struct peer tx = peer(&hub, "tx", 0);
	struct peer slow = peer(&hub, "slow", 0);
	struct peer mon = peer(&hub, NULL, 0);
	char filter[64];
	struct batch b;
	struct rframe f;
	uint8_t *copy;

	snprintf(filter, sizeof(filter), "conn=%llu dir=in kind=SEND",
		 (unsigned long long)tx.conn);
	tap(mon.fd, 1, filter);
	/* slow does not read yet. */
	fill_queue(filler.fd, "slow");
	batch_build(&b, 500, 0);
	send_frame(tx.fd, 10, "slow", WF_BATCH, b.sb.data, b.sb.size);
	send_frame(tx.fd, 900, "slow", 0, "\x09", 1);
	/* The broker has read the batch (and parked tx on it). */
	expect_copy(mon.fd, 1, tx.conn, WIRE_MONITOR_IN, &copy);
	free(copy);

	read_frame(slow.fd, &f);
	assert_int_equal(f.h.id, 1);
	assert_int_equal(f.blen, FILL_LEN);
	expect_split(slow.fd, &b, 10, "slow", "tx", tx.conn);
	read_frame(slow.fd, &f);
	assert_int_equal(f.h.id, 900);
	/* The retried batch was tapped once: the next copy is frame 900. */
	{
		size_t n = expect_copy(mon.fd, 1, tx.conn, WIRE_MONITOR_IN, &copy);
		struct iovec iov;
		struct mpr r;
		struct frame_hdr h;
		bool body;

		mpr_init_buf(&r, &iov, copy, n);
		assert_int_equal(frame_decode(&r, FRAME_C2B, &h, &body, NULL),
				 WIRE_E_OK);
		assert_int_equal(h.id, 900);
		free(copy);
	}
	batch_free(&b);
	close(filler.fd);
	close(tx.fd);
	close(slow.fd);
	close(mon.fd);
	assert_int_equal(hub_stop(&hub), 0);
}

/* ---- batched publications (PROTOCOL.md 10.2.1) ------------------------- */

static void publish_frame(int fd, uint64_t id, const char *topic,
			  uint32_t flags, const void *body, size_t blen)
{
	one_way_frame(fd, WIRE_PUBLISH, WK_TOPIC, id, topic, flags, body, blen);
}

static void subscribe(int fd, uint64_t id, const char *pattern,
		      unsigned policy)
{
	struct frame_hdr h;
	struct rframe r;

	frame_init(&h, WIRE_SUBSCRIBE);
	h.id = id;
	h.policy = policy;
	h.has |= FH(WK_ID) | FH(WK_POLICY);
	frame_set_str(&h, WK_TOPIC, pattern, strlen(pattern));
	write_frame(fd, &h, NULL, 0);
	read_frame(fd, &r);
	assert_int_equal(r.h.kind, WIRE_OK);
	assert_int_equal(r.h.id, id);
}

/* PING id on fd and wait for its PONG: the broker has handled every
 * frame fd sent before it. */
static void ping_wait(int fd, uint64_t id)
{
	struct frame_hdr h;
	struct rframe r;

	frame_init(&h, WIRE_PING);
	h.id = id;
	h.has |= FH(WK_ID);
	write_frame(fd, &h, NULL, 0);
	read_frame(fd, &r);
	assert_int_equal(r.h.kind, WIRE_PONG);
	assert_int_equal(r.h.id, id);
}

static void check_pub(const struct frame_hdr *h, uint64_t sub,
		      const char *topic, const char *from, uint64_t from_id)
{
	assert_int_equal(h->kind, WIRE_PUBLISH);
	assert_int_equal(h->sub, sub);
	assert_string_equal(h->topic, topic);
	assert_true(h->has & FH(WK_FROM));
	assert_string_equal(h->from, from);
	assert_int_equal(h->from_id, from_id);
	assert_int_equal(h->uid, (uint32_t)getuid());
}

/* A batched PUBLISH reaches a subscriber that announced PUB_BATCH whole,
 * body untouched, and one that did not (BATCH alone) as one PUBLISH per
 * message, in order; a refused batch is answered once, with its count. */
static void test_publish_whole_and_split(void **state)
{
	(void)state;
	struct hub hub;
	hub_start(&hub, NULL);
	struct peer tx = peer(&hub, "tx", WF_BATCH | WF_PUB_BATCH);
	struct peer whole = peer(&hub, NULL, WF_BATCH | WF_PUB_BATCH);
	struct peer plain = peer(&hub, NULL, WF_BATCH);
	struct batch b;
	struct rframe f;

	subscribe(whole.fd, 7, "news.*", WIRE_POLICY_BLOCK);
	subscribe(plain.fd, 8, "news.>", WIRE_POLICY_DROP_OLDEST);
	/* 1000 mixed messages, every 16th over the broker's copy path. */
	batch_build(&b, 1000, 16);
	publish_frame(tx.fd, 100, "news.today", WF_BATCH, b.sb.data, b.sb.size);
	read_frame(whole.fd, &f);
	check_pub(&f.h, 7, "news.today", "tx", tx.conn);
	assert_int_equal(f.h.id, 100);
	assert_true(f.h.has & FH(WK_FLAGS));
	assert_int_equal(f.h.flags, WF_BATCH);
	assert_int_equal(f.blen, b.sb.size);
	assert_memory_equal(f.body, b.sb.data, b.sb.size);
	for (uint32_t i = 0; i < b.n; i++) {
		read_frame(plain.fd, &f);
		check_pub(&f.h, 8, "news.today", "tx", tx.conn);
		assert_int_equal(f.h.id, 100 + i);
		assert_false(f.h.has & FH(WK_FLAGS));
		assert_int_equal(f.blen, b.len[i]);
		assert_memory_equal(f.body, b.sb.data + b.off[i], b.len[i]);
	}
	/* A reserved topic: one ERROR for the 1000 publications. */
	publish_frame(tx.fd, 5000, "ipchub.x", WF_BATCH, b.sb.data, b.sb.size);
	read_frame(tx.fd, &f);
	assert_int_equal(f.h.kind, WIRE_ERROR);
	assert_int_equal(f.h.id, 5000);
	assert_int_equal(f.h.code, WIRE_E_BAD_NAME);
	assert_int_equal(f.h.ref, WIRE_PUBLISH);
	assert_int_equal(f.h.count, 1000);
	/* Not an array: BAD_BODY without count, and the connection goes on. */
	publish_frame(tx.fd, 6000, "news.today", WF_BATCH, "\x01", 1);
	read_frame(tx.fd, &f);
	assert_int_equal(f.h.kind, WIRE_ERROR);
	assert_int_equal(f.h.code, WIRE_E_BAD_BODY);
	assert_false(f.h.has & FH(WK_COUNT));
	/* No body at all: BAD_BODY too. */
	publish_frame(tx.fd, 6001, "news.today", WF_BATCH, NULL, 0);
	read_frame(tx.fd, &f);
	assert_int_equal(f.h.kind, WIRE_ERROR);
	assert_int_equal(f.h.code, WIRE_E_BAD_BODY);
	ping_wait(tx.fd, 6002);
	batch_free(&b);
	close(tx.fd);
	close(whole.fd);
	close(plain.fd);
	assert_int_equal(hub_stop(&hub), 0);
}

/* What one subscriber's stream held: publications (each id once, in
 * order) and GAP notices, each exactly as long as the ids it skipped. */
struct tally {
	uint64_t next;   /* the id expected next (ids start at base) */
	uint64_t got, lost, gaps, frames;
};

/* Read sub's stream on fd until every one of the total publications
 * with ids base .. base + total - 1 is delivered or counted lost. */
static void read_tally(int fd, uint64_t sub, uint64_t base, uint64_t total,
		       struct tally *t)
{
	*t = (struct tally){.next = base};
	while (t->got + t->lost < total) {
		struct rframe f;
		uint64_t n = 1;

		read_frame(fd, &f);
		t->frames++;
		assert_int_equal(f.h.sub, sub);
		if (f.h.kind == WIRE_GAP) {
			assert_true(f.h.count > 0);
			t->lost += f.h.count;
			t->next += f.h.count;
			t->gaps++;
			continue;
		}
		assert_int_equal(f.h.kind, WIRE_PUBLISH);
		/* Exact: this is the publication right after the loss. */
		if (f.h.id != t->next)
			fail_msg("sub %llu: id %llu, expected %llu",
				 (unsigned long long)sub,
				 (unsigned long long)f.h.id,
				 (unsigned long long)t->next);
		if ((f.h.has & FH(WK_FLAGS)) && (f.h.flags & WF_BATCH)) {
			const uint8_t *p = f.body;

			assert_int_equal(p[0], 0xdd); /* the publisher's array 32 */
			n = ((uint64_t)p[1] << 24) | ((uint64_t)p[2] << 16) |
			    ((uint64_t)p[3] << 8) | p[4];
		}
		t->got += n;
		t->next += n;
	}
	assert_int_equal(t->got + t->lost, total);
	assert_int_equal(t->next, base + total);
}

/* Batched publications to subscribers that do not read: drop-oldest and
 * drop-newest, with and without PUB_BATCH, count every lost publication
 * in a GAP placed exactly where it was lost; block loses nothing; the
 * broker's drop counters agree with the GAPs. */
static void test_publish_batch_gaps(void **state)
{
	enum { NBATCH = 40, PER = 500 };
	static const char *const args[] = { "--queue-hwm", "65536",
					    "--sub-queue", "64", NULL };
	struct hub hub;
	(void)state;
	hub_start(&hub, args);
	struct peer tx = peer(&hub, "tx", WF_BATCH | WF_PUB_BATCH);
	struct peer old_w = peer(&hub, NULL, WF_BATCH | WF_PUB_BATCH);
	struct peer old_p = peer(&hub, NULL, WF_BATCH);
	struct peer new_w = peer(&hub, NULL, WF_BATCH | WF_PUB_BATCH);
	struct peer new_p = peer(&hub, NULL, 0);
	struct peer obs = peer(&hub, NULL, 0);
	const uint64_t total = (uint64_t)NBATCH * PER, base = 1000;
	struct tally t[4];
	struct peer *sub[4] = { &old_w, &old_p, &new_w, &new_p };
	msgpack_sbuffer sb;
	msgpack_packer pk;
	uint8_t a32[5] = { 0xdd };
	static uint8_t pad[200];

	subscribe(old_w.fd, 1, "load", WIRE_POLICY_DROP_OLDEST);
	subscribe(old_p.fd, 2, "load", WIRE_POLICY_DROP_OLDEST);
	subscribe(new_w.fd, 3, "load", WIRE_POLICY_DROP_NEWEST);
	subscribe(new_p.fd, 4, "load", WIRE_POLICY_DROP_NEWEST);
	/* 40 batches of 500 publications of about 210 bytes: 4 MB for each
	 * subscriber, far beyond a socket buffer, the 64 KiB mark and a
	 * queue of 64 publications. */
	for (uint64_t k = 0; k < NBATCH; k++) {
		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		frame_put_len(a32 + 1, PER);
		msgpack_sbuffer_write(&sb, (const char *)a32, sizeof(a32));
		for (uint64_t i = 0; i < PER; i++) {
			msgpack_pack_array(&pk, 2);
			msgpack_pack_uint64(&pk, k * PER + i);
			msgpack_pack_bin_with_body(&pk, pad, sizeof(pad));
		}
		publish_frame(tx.fd, base + k * PER, "load", WF_BATCH, sb.data,
			      sb.size);
		msgpack_sbuffer_destroy(&sb);
	}
	/* Not held back by any of them: every batch was handled. */
	ping_wait(tx.fd, 1);
	for (int i = 0; i < 4; i++) {
		read_tally(sub[i]->fd, (uint64_t)i + 1, base, total, &t[i]);
		assert_true(t[i].lost > 0);
		assert_true(t[i].got > 0);
		print_message("sub %d: %llu delivered, %llu lost in %llu gaps, "
			      "%llu frames\n", i + 1,
			      (unsigned long long)t[i].got,
			      (unsigned long long)t[i].lost,
			      (unsigned long long)t[i].gaps,
			      (unsigned long long)t[i].frames);
	}
	/* The broker counted exactly the GAPs' total. */
	{
		struct frame_hdr h;
		struct rframe f;
		msgpack_unpacked u;
		uint64_t drops = 0;

		frame_init(&h, WIRE_REQUEST);
		h.id = 9;
		h.has |= FH(WK_ID);
		frame_set_str(&h, WK_TO, WIRE_SVC_STATS, strlen(WIRE_SVC_STATS));
		write_frame(obs.fd, &h, NULL, 0);
		read_frame(obs.fd, &f);
		assert_int_equal(f.h.kind, WIRE_REPLY);
		msgpack_unpacked_init(&u);
		assert_int_equal(msgpack_unpack_next(&u, (const char *)f.body,
						     f.blen, NULL),
				 MSGPACK_UNPACK_SUCCESS);
		drops = map_u(&u.data, "drops");
		assert_int_equal(drops, t[0].lost + t[1].lost + t[2].lost +
						t[3].lost);
		assert_true(map_u(&u.data, "batches_routed") >= NBATCH);
		msgpack_unpacked_destroy(&u);
	}
	for (int i = 0; i < 4; i++)
		close(sub[i]->fd);
	close(tx.fd);
	close(obs.fd);
	assert_int_equal(hub_stop(&hub), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_whole_and_split),
		cmocka_unit_test(test_largest_batch),
		cmocka_unit_test(test_undeliverable),
		cmocka_unit_test(test_bad_bodies),
		cmocka_unit_test(test_batch_flag_elsewhere),
		cmocka_unit_test(test_nowait_queue_full),
		cmocka_unit_test(test_stats),
		cmocka_unit_test(test_monitor),
		cmocka_unit_test(test_parked_batch),
		cmocka_unit_test(test_publish_whole_and_split),
		cmocka_unit_test(test_publish_batch_gaps),
	};
	int rc;

	rbuf = malloc(RBUF_CAP);
	if (!rbuf)
		return 1;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	free(rbuf);
	return rc;
}
