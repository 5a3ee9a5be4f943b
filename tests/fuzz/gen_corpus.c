/*
 * gen_corpus.c - write the seed corpus for fuzz_frame: one valid frame
 * (length prefix included) per kind and direction with all its keys, the
 * same with only the required keys, frames with bodies of several shapes,
 * and one stream of several frames back to back.
 *
 * Usage: fuzz_gen_corpus DIR   (the committed seeds are in corpus/frame)
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

int main(int argc, char **argv)
{
	static uint8_t out[1 << 16], stream[1 << 16];
	size_t slen = 0;
	int rc = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
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
		sample_build(&h, sk->kind, sk->req | sk->opt, SV_TYPICAL);
		n = build(out, sizeof(out), &h, body, has_body ? sizeof(body) : 0);
		snprintf(name, sizeof(name), "%s-%s", lower,
			 sk->dir == FRAME_C2B ? "c2b" : "b2c");
		rc |= write_file(argv[1], name, out, n);
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
	return rc ? 1 : 0;
}
