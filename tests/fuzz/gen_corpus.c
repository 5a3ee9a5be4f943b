/*
 * gen_corpus.c - write the seed corpus for fuzz_frame: one valid frame
 * (length prefix included) per kind and direction with all its keys, the
 * same with only the required keys, frames with bodies of several shapes,
 * and one stream of several frames back to back. With a second argument,
 * the seeds of the other targets instead: "mpr" (msgpack values, valid and
 * not), "broker" (client frame streams sent after the handshake) and
 * "handshake" (the first bytes of a connection).
 *
 * Usage: fuzz_gen_corpus DIR [frame|mpr|broker|handshake]
 *        (the committed seeds are in corpus/<target>)
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "frame_samples.h"
#include "mpw.h"

static int write_file(const char *dir, const char *name, const uint8_t *p,
		      size_t n)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (f == NULL || fwrite(p, 1, n, f) != n) {
		perror(path);
		if (f)
			fclose(f);
		return -1;
	}
	return fclose(f) == 0 ? 0 : -1;
}

/* prefix + header + body into out; returns total bytes. */
static size_t build(uint8_t *out, size_t cap, const struct frame_hdr *h,
		    const uint8_t *body, size_t blen)
{
	size_t n = frame_encode(h, blen, out, cap);

	if (n + blen > cap)
		abort();
	memcpy(out + n, body, blen);
	return n + blen;
}

/* ---- seeds of fuzz_mpr ---------------------------------------------- */

static int gen_mpr(const char *dir)
{
	static const struct {
		const char *name;
		const char *bytes;
		size_t len;
	} seeds[] = {
#define S(n, b) { n, b, sizeof(b) - 1 }
		S("nil", "\xc0"),
		S("bools", "\x92\xc2\xc3"),
		S("ints", "\x9a\x01\xff\xcc\x80\xcd\x01\x00\xce\x00\x01\x00\x00"
			  "\xcf\x00\x00\x00\x01\x00\x00\x00\x00\xd0\x80\xd1\x80\x00"
			  "\xd2\x80\x00\x00\x00\xd3\x80\x00\x00\x00\x00\x00\x00\x00\xe0"),
		S("floats", "\x92\xca\x3f\x80\x00\x00\xcb\x40\x09\x21\xfb\x54\x44\x2d\x18"),
		S("strs", "\x93\xa1x\xd9\x03" "abc\xda\x00\x02hi"),
		S("str32", "\xdb\x00\x00\x00\x01z"),
		S("bins", "\x93\xc4\x01\x00\xc5\x00\x01\x00\xc6\x00\x00\x00\x01\x00"),
		S("exts", "\x97\xd4\x01\x00\xd5\x01\x00\x00\xd6\xff\x00\x00\x00\x01"
			  "\xd7\x01\x00\x00\x00\x00\x00\x00\x00\x00"
			  "\xd8\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
			  "\xc7\x01\x05\x00\xc8\x00\x00\x05"),
		S("maps", "\x82\xa1k\x80\xde\x00\x01\x01\xdf\x00\x00\x00\x01\x02\xdc\x00\x00"),
		S("array32", "\xdd\x00\x00\x00\x02\x01\x02"),
		S("c1", "\xc1"),
		S("c1-inside", "\x92\x01\xc1"),
		S("trailing", "\x01\x02"),
		S("short-str", "\xa5" "ab"),
		S("count-beyond", "\xdd\xff\xff\xff\xff\x01"),
		S("map-count-beyond", "\xdf\x7f\xff\xff\xff\x01\x02"),
#undef S
	};
	uint8_t deep[64];
	int rc = 0;

	for (size_t k = 0; k < sizeof(seeds) / sizeof(seeds[0]); k++)
		rc |= write_file(dir, seeds[k].name, (const uint8_t *)seeds[k].bytes,
				 seeds[k].len);
	/* Nesting exactly at the limit, and one level beyond. */
	memset(deep, 0x91, sizeof(deep));
	deep[IPCHUB_MAX_BODY_DEPTH] = 0xc0;
	rc |= write_file(dir, "depth-max", deep, IPCHUB_MAX_BODY_DEPTH + 1);
	deep[IPCHUB_MAX_BODY_DEPTH] = 0x91;
	deep[IPCHUB_MAX_BODY_DEPTH + 1] = 0xc0;
	rc |= write_file(dir, "depth-max-plus-1", deep, IPCHUB_MAX_BODY_DEPTH + 2);
	return rc;
}

/* ---- seeds of fuzz_frame for descriptor passing (PROTOCOL.md 6.8) ------- */

/* kind/dir header with the sample's required keys, flags and fds (each
 * only when non-zero), written as DIR/name. fds 0 with FH(WK_FDS) in
 * extra writes the key with the value 0 (illegal). */
static int put_fds_frame(const char *dir, const char *name, int kind,
			 uint32_t flags, uint32_t fds, bool with_fds_key)
{
	struct frame_hdr h;
	uint8_t out[FRAME_ENC_MAX];
	uint32_t req = 0;

	for (size_t s = 0; s < N_SAMPLE_KINDS; s++)
		if (sample_kinds[s].kind == kind) {
			req = sample_kinds[s].req;
			break;
		}
	sample_build(&h, kind, req, SV_TYPICAL);
	if (flags) {
		h.flags = flags;
		h.has |= FH(WK_FLAGS);
	}
	if (with_fds_key) {
		h.fds = fds;
		h.has |= FH(WK_FDS);
	}
	return write_file(dir, name, out, build(out, sizeof(out), &h, NULL, 0));
}

/* WF_FDS in HELLO and WELCOME, key 31 (fds) at its bounds on the kinds
 * that carry it, and the illegal values: 0, over the per-frame maximum,
 * with a batch, on a kind that takes none, FDS on a SEND's flags. */
static int gen_frame_fds(const char *dir)
{
	const uint32_t max = IPCHUB_MAX_FDS_PER_FRAME;
	int rc = 0;

	rc |= put_fds_frame(dir, "hello-c2b-fds", WIRE_HELLO, WF_FDS, 0, false);
	rc |= put_fds_frame(dir, "hello-c2b-batch-fds", WIRE_HELLO,
			    WF_BATCH | WF_FDS, 0, false);
	rc |= put_fds_frame(dir, "welcome-b2c-fds", WIRE_WELCOME,
			    WF_BATCH | WF_FDS, 0, false);
	rc |= put_fds_frame(dir, "send-c2b-fds-1", WIRE_SEND, 0, 1, true);
	rc |= put_fds_frame(dir, "send-c2b-fds-max-nowait", WIRE_SEND,
			    WF_NOWAIT, max, true);
	rc |= put_fds_frame(dir, "request-c2b-fds-max", WIRE_REQUEST, 0, max,
			    true);
	rc |= put_fds_frame(dir, "reply-c2b-fds-1", WIRE_REPLY, 0, 1, true);
	rc |= put_fds_frame(dir, "send-c2b-fds-zero", WIRE_SEND, 0, 0, true);
	rc |= put_fds_frame(dir, "send-c2b-fds-over", WIRE_SEND, 0, max + 1,
			    true);
	rc |= put_fds_frame(dir, "send-c2b-fds-u32max", WIRE_SEND, 0,
			    UINT32_MAX, true);
	rc |= put_fds_frame(dir, "send-c2b-fds-batch", WIRE_SEND, WF_BATCH, 1,
			    true);
	rc |= put_fds_frame(dir, "send-c2b-flag-fds", WIRE_SEND, WF_FDS, 0,
			    false);
	rc |= put_fds_frame(dir, "ping-c2b-fds", WIRE_PING, 0, 1, true);
	return rc;
}

/* ---- seeds of fuzz_broker and fuzz_handshake ----------------------------- */

struct seed {
	uint8_t buf[1 << 14];
	size_t len;
};

static void put(struct seed *s, const struct frame_hdr *h, const void *body,
		size_t blen)
{
	s->len += build(s->buf + s->len, sizeof(s->buf) - s->len, h, body, blen);
}

static void put_id_name(struct seed *s, enum wire_kind kind, uint64_t id,
			enum wire_key key, const char *name)
{
	struct frame_hdr h;

	frame_init(&h, kind);
	h.id = id;
	h.has |= FH(WK_ID);
	if (name)
		frame_set_str(&h, key, name, strlen(name));
	put(s, &h, NULL, 0);
}

static void put_hello(struct seed *s, uint32_t lo, uint32_t hi, const char *agent)
{
	struct frame_hdr h;

	frame_init(&h, WIRE_HELLO);
	h.ver = hi;
	h.ver_min = lo;
	h.has |= FH(WK_VER) | FH(WK_VER_MIN);
	if (agent)
		frame_set_str(&h, WK_AGENT, agent, strlen(agent));
	put(s, &h, NULL, 0);
}

/* SEND {id, to, flags} with a body (blen 0: none). */
static void put_send(struct seed *s, uint64_t id, const char *to,
		     uint32_t flags, const void *body, size_t blen)
{
	struct frame_hdr h;

	frame_init(&h, WIRE_SEND);
	h.id = id;
	h.has |= FH(WK_ID);
	frame_set_str(&h, WK_TO, to, strlen(to));
	if (flags) {
		h.flags = flags;
		h.has |= FH(WK_FLAGS);
	}
	put(s, &h, body, blen);
}

/* Batched SENDs (PROTOCOL.md 6.3.1). In fuzz_broker "svc.echo" announced
 * BATCH and takes a batch whole; "client-1", the sender itself, did not
 * and gets each message as its own SEND (the split, here across a message
 * over the 4 KiB copy path). Then the answers with count, and the bodies
 * that are not batches. */
static int gen_batches(const char *dir)
{
	/* [1, "ab", nil, {"k": [true]}] as array 32, then as a fixarray. */
	static const uint8_t batch[] = { 0xdd, 0, 0, 0, 4, 0x01, 0xa2, 'a', 'b',
					 0xc0, 0x81, 0xa1, 'k', 0x91, 0xc3 };
	static const uint8_t batch_fix[] = { 0x92, 0xcd, 0x01, 0x00, 0x90 };
	static const struct {
		const uint8_t *b;
		size_t n;
	} bad[] = {
		{ (const uint8_t *)"\x81\xa1k\x01", 4 },     /* not an array */
		{ (const uint8_t *)"\x90", 1 },               /* empty */
		{ (const uint8_t *)"\xdd\x00\x01\x00\x01", 5 }, /* 65537 */
		{ (const uint8_t *)"\x93\x01\x02\xa5" "ab", 6 }, /* truncated */
		{ (const uint8_t *)"\x92\x01\x02\x03", 4 },   /* trailing */
		{ (const uint8_t *)"\x91\xc1", 2 },           /* 0xc1 */
	};
	static uint8_t big[5 + 2 + 3 + 5000];
	struct seed s;
	struct frame_hdr h;
	int rc = 0;

	s.len = 0;
	put_send(&s, 30, "svc.echo", WF_BATCH, batch, sizeof(batch));
	put_send(&s, 34, "svc.echo", WF_BATCH | WF_NOWAIT, batch_fix,
		 sizeof(batch_fix));
	put_send(&s, 36, "client-1", WF_BATCH, batch, sizeof(batch));
	put_send(&s, 40, "svc.echo", 0, batch, sizeof(batch)); /* one message */
	rc |= write_file(dir, "batch", s.buf, s.len);

	/* [0x7f, bin of 5000, nil] to the sender: the split copies the big
	 * message chain by chain. */
	big[0] = 0x93;
	big[1] = 0x7f;
	big[2] = 0xc5;
	big[3] = (uint8_t)(5000 >> 8);
	big[4] = (uint8_t)5000;
	big[5 + 5000] = 0xc0;
	s.len = 0;
	put_send(&s, 50, "client-1", WF_BATCH, big, 6 + 5000);
	put_send(&s, 60, "svc.echo", WF_BATCH, big, 6 + 5000);
	rc |= write_file(dir, "batch-big", s.buf, s.len);

	s.len = 0;
	put_send(&s, 70, "nobody", WF_BATCH, batch, sizeof(batch));
	put_send(&s, 71, "bad..name", WF_BATCH, batch, sizeof(batch));
	put_send(&s, 72, "ipchub.nope", WF_BATCH, batch, sizeof(batch));
	put_send(&s, 73, WIRE_SVC_PING, WF_BATCH, batch, sizeof(batch));
	put_send(&s, 74, "svc.echo", WF_BATCH, NULL, 0); /* no body */
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
		put_send(&s, 80 + k, "svc.echo", WF_BATCH, bad[k].b, bad[k].n);
	/* BATCH on a REQUEST: fatal. */
	frame_init(&h, WIRE_REQUEST);
	h.id = 90;
	h.flags = WF_BATCH;
	h.has |= FH(WK_ID) | FH(WK_FLAGS);
	frame_set_str(&h, WK_TO, "svc.echo", 8);
	put(&s, &h, batch, sizeof(batch));
	rc |= write_file(dir, "batch-errors", s.buf, s.len);
	return rc;
}

static int gen_broker(const char *dir)
{
	static const uint8_t body[] = { 0x82, 0xa1, 'k', 0x01, 0xa1, 'v', 0x91, 0xc0 };
	static const uint8_t bad_body[] = { 0x92, 0x01 };
	struct seed s;
	struct frame_hdr h;
	int rc = 0;

	s.len = 0;
	put_id_name(&s, WIRE_SEND, 2, WK_TO, "svc.echo"); /* no body */
	frame_init(&h, WIRE_SEND);
	h.id = 3;
	h.has |= FH(WK_ID);
	frame_set_str(&h, WK_TO, "svc.echo", 8);
	put(&s, &h, body, sizeof(body));
	h.flags = WF_NOWAIT;
	h.has |= FH(WK_FLAGS);
	put(&s, &h, body, sizeof(body));
	rc |= write_file(dir, "send", s.buf, s.len);

	s.len = 0;
	frame_init(&h, WIRE_REQUEST);
	h.id = 4;
	h.timeout = 1000;
	h.has |= FH(WK_ID) | FH(WK_TIMEOUT);
	frame_set_str(&h, WK_TO, "svc.echo", 8);
	put(&s, &h, body, sizeof(body));
	put_id_name(&s, WIRE_CANCEL, 4, WK_TO, NULL);
	put_id_name(&s, WIRE_REQUEST, 5, WK_TO, "svc.echo");
	put_id_name(&s, WIRE_REQUEST, 5, WK_TO, "svc.echo"); /* duplicate id */
	rc |= write_file(dir, "request-cancel-dup", s.buf, s.len);

	s.len = 0;
	put_id_name(&s, WIRE_REQUEST, 6, WK_TO, WIRE_SVC_PEERS);
	frame_init(&h, WIRE_REQUEST);
	h.id = 7;
	h.has |= FH(WK_ID);
	frame_set_str(&h, WK_TO, WIRE_SVC_PING, strlen(WIRE_SVC_PING));
	put(&s, &h, body, sizeof(body));
	put_id_name(&s, WIRE_REQUEST, 8, WK_TO, WIRE_SVC_STATS);
	put_id_name(&s, WIRE_REQUEST, 9, WK_TO, "ipchub.nope");
	put_id_name(&s, WIRE_PING, 10, WK_TO, NULL);
	rc |= write_file(dir, "services", s.buf, s.len);

	s.len = 0;
	put_id_name(&s, WIRE_REGISTER, 11, WK_NAME, "n1");
	put_id_name(&s, WIRE_REGISTER, 12, WK_NAME, "n2");
	put_id_name(&s, WIRE_REGISTER, 13, WK_NAME, "n3");
	put_id_name(&s, WIRE_REGISTER, 14, WK_NAME, "n4");
	put_id_name(&s, WIRE_REGISTER, 15, WK_NAME, "svc.echo");
	put_id_name(&s, WIRE_REGISTER, 16, WK_NAME, "ipchub.x");
	put_id_name(&s, WIRE_REGISTER, 17, WK_NAME, "bad..name");
	put_id_name(&s, WIRE_UNREGISTER, 18, WK_NAME, "client-1");
	put_id_name(&s, WIRE_UNREGISTER, 19, WK_NAME, "nope");
	put_id_name(&s, WIRE_SEND, 20, WK_TO, "client-1");
	rc |= write_file(dir, "names", s.buf, s.len);

	s.len = 0;
	frame_init(&h, WIRE_REPLY);
	h.id = 1;
	h.to_id = 1;
	h.code = WIRE_E_REMOTE_ERROR;
	h.has |= FH(WK_ID) | FH(WK_TO_ID) | FH(WK_CODE);
	frame_set_str(&h, WK_MSG, "no", 2);
	put(&s, &h, body, sizeof(body));
	frame_init(&h, WIRE_SEND);
	h.id = 21;
	h.has |= FH(WK_ID);
	frame_set_str(&h, WK_TO, "svc.echo", 8);
	put(&s, &h, bad_body, sizeof(bad_body));
	frame_init(&h, WIRE_BYE);
	put(&s, &h, NULL, 0);
	rc |= write_file(dir, "reply-badbody-bye", s.buf, s.len);

	s.len = 0;
	put_hello(&s, 1, 1, NULL);
	rc |= write_file(dir, "second-hello", s.buf, s.len);

	/* A large body, to reach the evbuffer move path and the mark. */
	{
		static uint8_t big[1 << 13];

		big[0] = 0xc5;
		big[1] = (uint8_t)((sizeof(big) - 3) >> 8);
		big[2] = (uint8_t)(sizeof(big) - 3);
		s.len = 0;
		frame_init(&h, WIRE_SEND);
		h.id = 22;
		h.has |= FH(WK_ID);
		frame_set_str(&h, WK_TO, "svc.echo", 8);
		put(&s, &h, big, sizeof(big));
		rc |= write_file(dir, "send-8k", s.buf, s.len);
	}
	/* Descriptors claimed (fds) that no control message brought: the
	 * first claim is PROTOCOL, fatal; the frames after it are not read. */
	s.len = 0;
	put_send(&s, 23, "svc.echo", 0, body, sizeof(body));
	frame_init(&h, WIRE_SEND);
	h.id = 24;
	h.fds = 1;
	h.has |= FH(WK_ID) | FH(WK_FDS);
	frame_set_str(&h, WK_TO, "svc.echo", 8);
	put(&s, &h, body, sizeof(body));
	put_id_name(&s, WIRE_PING, 25, WK_TO, NULL);
	rc |= write_file(dir, "send-fds-none-came", s.buf, s.len);

	s.len = 0;
	frame_init(&h, WIRE_REQUEST);
	h.id = 26;
	h.fds = IPCHUB_MAX_FDS_PER_FRAME;
	h.has |= FH(WK_ID) | FH(WK_FDS);
	frame_set_str(&h, WK_TO, WIRE_SVC_PING, strlen(WIRE_SVC_PING));
	put(&s, &h, NULL, 0);
	rc |= write_file(dir, "request-svc-fds", s.buf, s.len);
	return rc | gen_batches(dir);
}

static int gen_handshake(const char *dir)
{
	struct seed s;
	struct frame_hdr h;
	int rc = 0;

	s.len = 0;
	put_hello(&s, 1, 1, NULL);
	rc |= write_file(dir, "hello", s.buf, s.len);
	s.len = 0;
	put_hello(&s, 1, 7, "fuzz/1.0 pid=1");
	put_id_name(&s, WIRE_PING, 1, WK_TO, NULL);
	put_id_name(&s, WIRE_REGISTER, 2, WK_NAME, "x");
	put_id_name(&s, WIRE_SEND, 3, WK_TO, "x");
	rc |= write_file(dir, "hello-agent-then-frames", s.buf, s.len);
	s.len = 0;
	put_hello(&s, 2, 9, NULL);
	rc |= write_file(dir, "hello-no-common-version", s.buf, s.len);
	s.len = 0;
	put_id_name(&s, WIRE_PING, 1, WK_TO, NULL);
	rc |= write_file(dir, "ping-before-hello", s.buf, s.len);
	s.len = 0;
	frame_init(&h, WIRE_AUTH);
	memset(h.pk, 1, sizeof(h.pk));
	memset(h.nonce, 2, sizeof(h.nonce));
	memset(h.sig, 3, sizeof(h.sig));
	h.has |= FH(WK_PK) | FH(WK_NONCE) | FH(WK_SIG);
	put(&s, &h, NULL, 0);
	rc |= write_file(dir, "auth-before-hello", s.buf, s.len);
	s.len = 0;
	put_hello(&s, 1, 1, NULL);
	put(&s, &h, NULL, 0);
	rc |= write_file(dir, "hello-then-auth", s.buf, s.len);
	s.len = 0;
	put_hello(&s, 1, 1, NULL);
	put_hello(&s, 1, 1, NULL);
	rc |= write_file(dir, "hello-twice", s.buf, s.len);
	s.len = 0;
	frame_init(&h, WIRE_HELLO);
	h.ver = 1;
	h.ver_min = 1;
	h.flags = WF_BATCH; /* accepts batched deliveries */
	h.has |= FH(WK_VER) | FH(WK_VER_MIN) | FH(WK_FLAGS);
	put(&s, &h, NULL, 0);
	put_send(&s, 3, "x", WF_BATCH, (const uint8_t *)"\x91\x01", 2);
	rc |= write_file(dir, "hello-batch", s.buf, s.len);
	s.len = 0;
	h.flags = WF_BATCH | WF_FDS; /* takes descriptors */
	put(&s, &h, NULL, 0);
	put_id_name(&s, WIRE_REGISTER, 2, WK_NAME, "x");
	put_id_name(&s, WIRE_SEND, 3, WK_TO, "x");
	rc |= write_file(dir, "hello-fds", s.buf, s.len);
	{
		/* Just over the pre-handshake frame limit. */
		uint8_t pre[4];

		frame_put_len(pre, IPCHUB_MAX_PREAUTH_FRAME + 1);
		rc |= write_file(dir, "preauth-too-large", pre, sizeof(pre));
	}
	return rc;
}

/* ---- seeds of fuzz_sess: broker bytes after WELCOME ----------------------- */

/* A delivered SEND {id, to: "me", from: "peer", from_id: 3, flags}. */
static void put_delivery(struct seed *s, uint64_t id, uint32_t flags,
			 const void *body, size_t blen)
{
	struct frame_hdr h;

	frame_init(&h, WIRE_SEND);
	h.id = id;
	h.from_id = 3;
	h.has |= FH(WK_ID) | FH(WK_FROM_ID);
	frame_set_str(&h, WK_TO, "me", 2);
	frame_set_str(&h, WK_FROM, "peer", 4);
	if (flags) {
		h.flags = flags;
		h.has |= FH(WK_FLAGS);
	}
	put(s, &h, body, blen);
}

static void put_error(struct seed *s, uint64_t id, bool has_count,
		      uint64_t count)
{
	struct frame_hdr h;

	frame_init(&h, WIRE_ERROR);
	h.id = id;
	h.code = WIRE_E_NO_SUCH_PEER;
	h.ref = WIRE_SEND;
	h.has |= FH(WK_ID) | FH(WK_CODE) | FH(WK_REF);
	frame_set_str(&h, WK_TO, "nobody", 6);
	if (has_count) {
		h.count = count;
		h.has |= FH(WK_COUNT);
	}
	put(s, &h, NULL, 0);
}

/* The first byte of each seed picks the read size (byte * 7 + 1); each
 * seed is written with two. */
static int write_sess(const char *dir, const char *name, struct seed *s)
{
	static uint8_t out[sizeof(s->buf) + 1];
	static const uint8_t sel[] = { 0, 3 };
	char fname[64];
	int rc = 0;

	for (size_t i = 0; i < sizeof(sel); i++) {
		out[0] = sel[i];
		memcpy(out + 1, s->buf, s->len);
		snprintf(fname, sizeof(fname), "%s-%u", name, sel[i]);
		rc |= write_file(dir, fname, out, s->len + 1);
	}
	return rc;
}

static int gen_sess(const char *dir)
{
	/* Ten bodies of different formats as array 32, then subsets as a
	 * fixarray and an array 16. */
	static const uint8_t batch[] = {
		0xdd, 0, 0, 0, 10, 0x01, 0xc0, 0xa3, 'a', 'b', 'c',
		0xc4, 0x03, 1, 2, 3, 0x82, 0xa1, 'a', 0x01, 0xa1, 'b', 0x92,
		0xc3, 0xc2, 0x91, 0x91, 0x90, 0xcb, 0x40, 0x40, 0x40, 0x40,
		0x40, 0x40, 0x40, 0x40, 0xd6, 0x01, 'a', 'b', 'c', 'd', 0xc7,
		0x02, 0x05, 'z', 'z', 0xdc, 0x00, 0x02, 0x01, 0x02 };
	static const uint8_t fix[] = { 0x93, 0x01, 0xa1, 'x', 0xff };
	static const uint8_t a16[] = { 0xdc, 0, 2, 0xcd, 1, 0, 0xd0, 0x80 };
	static const uint8_t one[] = { 0x91, 0x2a };
	static const struct {
		const char *name;
		const uint8_t *b;
		size_t n;
	} bad[] = {
		{ "batch-not-array", (const uint8_t *)"\x81\x01\x02", 3 },
		{ "batch-empty", (const uint8_t *)"\x90", 1 },
		{ "batch-short", (const uint8_t *)"\x93\x01", 2 },
		{ "batch-trailing", (const uint8_t *)"\x92\x01\x02\x03", 4 },
		{ "batch-bad-element", (const uint8_t *)"\x92\x01\xc1", 3 },
	};
	static uint8_t big[5 + 3 * (3 + 4000)];
	struct seed s;
	int rc = 0;

	s.len = 0;
	put_delivery(&s, 10, WF_BATCH, batch, sizeof(batch));
	rc |= write_sess(dir, "batch", &s);
	s.len = 0;
	put_delivery(&s, 40, WF_BATCH, fix, sizeof(fix));
	put_delivery(&s, 99, 0, one + 1, 1);
	put_delivery(&s, 100, WF_BATCH, a16, sizeof(a16));
	put_delivery(&s, 200, WF_BATCH, one, sizeof(one));
	rc |= write_sess(dir, "batch-then-send", &s);
	s.len = 0;
	put_error(&s, 5, true, 7);
	put_error(&s, 12, false, 0);
	put_error(&s, 13, true, 1);
	rc |= write_sess(dir, "errors", &s);
	s.len = 0;
	put_error(&s, 5, true, 0);
	rc |= write_sess(dir, "error-count-zero", &s);
	s.len = 0;
	put_delivery(&s, 1, WF_BATCH, NULL, 0);
	rc |= write_sess(dir, "batch-no-body", &s);
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		s.len = 0;
		put_delivery(&s, 1, WF_BATCH, bad[k].b, bad[k].n);
		rc |= write_sess(dir, bad[k].name, &s);
	}
	/* Three 4000-byte bins: split across many reads. */
	big[0] = 0xdd;
	big[4] = 3;
	for (size_t i = 0; i < 3; i++) {
		uint8_t *e = big + 5 + i * (3 + 4000);

		e[0] = 0xc5;
		e[1] = (uint8_t)(4000 >> 8);
		e[2] = (uint8_t)4000;
	}
	s.len = 0;
	put_delivery(&s, 7, WF_BATCH, big, sizeof(big));
	rc |= write_sess(dir, "batch-big", &s);
	/* A delivery claiming a descriptor (none can come with the bytes),
	 * and FDS_UNSUPPORTED answering one of ours. */
	{
		struct frame_hdr h;

		s.len = 0;
		frame_init(&h, WIRE_SEND);
		h.id = 8;
		h.from_id = 3;
		h.fds = 2;
		h.has |= FH(WK_ID) | FH(WK_FROM_ID) | FH(WK_FDS);
		frame_set_str(&h, WK_TO, "me", 2);
		put(&s, &h, one + 1, 1);
		rc |= write_sess(dir, "send-fds", &s);
		s.len = 0;
		frame_init(&h, WIRE_ERROR);
		h.id = 9;
		h.code = WIRE_E_FDS_UNSUPPORTED;
		h.ref = WIRE_SEND;
		h.has |= FH(WK_ID) | FH(WK_CODE) | FH(WK_REF);
		frame_set_str(&h, WK_TO, "node-peer", 9);
		put(&s, &h, NULL, 0);
		put_delivery(&s, 10, 0, one + 1, 1);
		rc |= write_sess(dir, "error-fds-unsupported", &s);
	}
	return rc;
}

int main(int argc, char **argv)
{
	static uint8_t out[1 << 16], stream[1 << 16];
	size_t slen = 0;
	int rc = 0;

	if (argc != 2 && argc != 3) {
		fprintf(stderr, "usage: %s DIR [frame|mpr|broker|handshake|sess]\n",
			argv[0]);
		return 2;
	}
	if (argc == 3 && strcmp(argv[2], "mpr") == 0)
		return gen_mpr(argv[1]) ? 1 : 0;
	if (argc == 3 && strcmp(argv[2], "broker") == 0)
		return gen_broker(argv[1]) ? 1 : 0;
	if (argc == 3 && strcmp(argv[2], "handshake") == 0)
		return gen_handshake(argv[1]) ? 1 : 0;
	if (argc == 3 && strcmp(argv[2], "sess") == 0)
		return gen_sess(argv[1]) ? 1 : 0;
	if (argc == 3 && strcmp(argv[2], "frame") != 0) {
		fprintf(stderr, "%s: unknown target %s\n", argv[0], argv[2]);
		return 2;
	}
	for (size_t s = 0; s < N_SAMPLE_KINDS; s++) {
		const struct sample_kind *sk = &sample_kinds[s];
		static const uint8_t body[] = { 0x82, 0xa1, 'k', 0x01, 0xa1, 'v',
						0x93, 0xc3, 0xc0, 0xcb, 0x40, 0x09,
						0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18 };
		bool has_body = sample_has_body(sk);
		struct frame_hdr h;
		char name[64], lower[32];
		size_t n;

		snprintf(lower, sizeof(lower), "%s", frame_kind_name(sk->kind));
		for (char *c = lower; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		/* A memfd body is never inline: its seeds are written apart. */
		sample_build(&h, sk->kind, sk->req | (sk->opt & ~FH(WK_MEMFD)),
			     SV_TYPICAL);
		n = build(out, sizeof(out), &h, body, has_body ? sizeof(body) : 0);
		snprintf(name, sizeof(name), "%s-%s", lower,
			 sk->dir == FRAME_C2B ? "c2b" : "b2c");
		rc |= write_file(argv[1], name, out, n);
		if (sk->opt & FH(WK_MEMFD)) {
			/* fds: 1 + memfd: len (PROTOCOL.md 6.10), smallest
			 * and largest lengths. */
			for (int v = SV_TYPICAL; v < SV_COUNT_; v++) {
				sample_build(&h, sk->kind, sk->req | FH(WK_MEMFD),
					     (enum sample_variant)v);
				n = build(out, sizeof(out), &h, NULL, 0);
				snprintf(name, sizeof(name), "%s-%s-memfd%d", lower,
					 sk->dir == FRAME_C2B ? "c2b" : "b2c", v);
				rc |= write_file(argv[1], name, out, n);
			}
		}
		if (sk->kind == WIRE_HELLO || sk->kind == WIRE_WELCOME) {
			sample_build(&h, sk->kind, sk->req | FH(WK_FLAGS),
				     SV_TYPICAL);
			h.flags = WF_BATCH | WF_FDS | WF_MEMFD;
			n = build(out, sizeof(out), &h, NULL, 0);
			snprintf(name, sizeof(name), "%s-%s-memfd", lower,
				 sk->dir == FRAME_C2B ? "c2b" : "b2c");
			rc |= write_file(argv[1], name, out, n);
		}
		if (slen + n <= sizeof(stream) && s % 3 == 0) {
			memcpy(stream + slen, out, n);
			slen += n;
		}
		if (sk->opt != 0 && !has_body) {
			sample_build(&h, sk->kind, sk->req, SV_MIN);
			n = build(out, sizeof(out), &h, NULL, 0);
			snprintf(name, sizeof(name), "%s-%s-min", lower,
				 sk->dir == FRAME_C2B ? "c2b" : "b2c");
			rc |= write_file(argv[1], name, out, n);
		}
	}

	/* Bodies of other shapes. */
	{
		struct frame_hdr h;
		uint8_t body[256];
		struct mpw w;
		size_t n;

		sample_build(&h, WIRE_SEND, FH(WK_ID) | FH(WK_TO), SV_TYPICAL);
		mpw_init(&w, body, sizeof(body));
		for (int d = 0; d < 8; d++)
			mpw_array(&w, 1);
		mpw_map(&w, 2);
		mpw_str(&w, "bin", 3);
		mpw_bin(&w, "\x00\x01\x02", 3);
		mpw_int(&w, -70000);
		body[w.len++] = 0xd6; /* fixext4 */
		body[w.len++] = 0xff;
		memcpy(body + w.len, "\x00\x00\x00\x01", 4);
		w.len += 4;
		n = build(out, sizeof(out), &h, body, w.len);
		rc |= write_file(argv[1], "send-c2b-nested-body", out, n);

		sample_build(&h, WIRE_REPLY, FH(WK_ID) | FH(WK_TO_ID) | FH(WK_CODE),
			     SV_TYPICAL);
		mpw_init(&w, body, sizeof(body));
		mpw_str(&w, "a reply body that is one string", 31);
		n = build(out, sizeof(out), &h, body, w.len);
		rc |= write_file(argv[1], "reply-c2b-str-body", out, n);
	}
	rc |= write_file(argv[1], "stream-several", stream, slen);
	rc |= gen_frame_fds(argv[1]);
	return rc ? 1 : 0;
}
