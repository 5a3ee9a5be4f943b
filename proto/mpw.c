/*
 * mpw.c - msgpack writer into a caller-owned fixed buffer.
 *
 * Model: the writer owns nothing; it appends whole items to w->p[0..cap).
 * An item that does not fit is dropped entirely and sets w->overflow, and
 * once overflow is set every later write is dropped too, so the bytes in
 * w->p[0..len) are always a valid prefix of what was asked for and nothing
 * is ever written at or past cap. Every encoder picks the shortest form.
 */
#include "mpw.h"

#include <string.h>

void mpw_init(struct mpw *w, void *buf, size_t cap)
{
	w->p = buf;
	w->cap = cap;
	w->len = 0;
	w->overflow = false;
}

/* Append a type byte, an n-byte big-endian number and then len raw bytes
 * as one unit: all of it or (on overflow) none of it. */
static inline void mpw_put(struct mpw *w, int type, uint64_t num,
			   unsigned nbytes, const void *raw, size_t len)
{
	size_t need = (type >= 0 ? 1u : 0u) + nbytes;

	if (w->overflow || len > SIZE_MAX - need ||
	    need + len > w->cap - w->len) {
		w->overflow = true;
		return;
	}
	if (type >= 0)
		w->p[w->len++] = (uint8_t)type;
	if (nbytes > 0) {
		/* Big-endian: the low nbytes of num, most significant first. */
		uint64_t be = __builtin_bswap64(num << (64 - 8 * nbytes));

		memcpy(w->p + w->len, &be, nbytes);
		w->len += nbytes;
	}
	if (len > 0) {
		memcpy(w->p + w->len, raw, len);
		w->len += len;
	}
}

void mpw_uint_slow(struct mpw *w, uint64_t v)
{
	if (v <= 0x7f)
		mpw_put(w, (int)v, 0, 0, NULL, 0);
	else if (v <= UINT8_MAX)
		mpw_put(w, 0xcc, v, 1, NULL, 0);
	else if (v <= UINT16_MAX)
		mpw_put(w, 0xcd, v, 2, NULL, 0);
	else if (v <= UINT32_MAX)
		mpw_put(w, 0xce, v, 4, NULL, 0);
	else
		mpw_put(w, 0xcf, v, 8, NULL, 0);
}

void mpw_int(struct mpw *w, int64_t v)
{
	if (v >= 0)
		mpw_uint(w, (uint64_t)v);
	else if (v >= -32)
		mpw_put(w, (int)(0x100 + v), 0, 0, NULL, 0); /* negative fixint */
	else if (v >= INT8_MIN)
		mpw_put(w, 0xd0, (uint64_t)v, 1, NULL, 0);
	else if (v >= INT16_MIN)
		mpw_put(w, 0xd1, (uint64_t)v, 2, NULL, 0);
	else if (v >= INT32_MIN)
		mpw_put(w, 0xd2, (uint64_t)v, 4, NULL, 0);
	else
		mpw_put(w, 0xd3, (uint64_t)v, 8, NULL, 0);
}

/* Header of a str/bin/array/map of length n: `fix` is the fix-form base
 * (or -1 if none) covering n < fixmax; t8/t16/t32 the sized forms (t8 -1
 * if the type has no 8-bit form). */
static void mpw_len_head(struct mpw *w, uint64_t n, int fix, uint64_t fixmax,
			 int t8, int t16, int t32, const void *raw, size_t len)
{
	if (fix >= 0 && n < fixmax)
		mpw_put(w, fix | (int)n, 0, 0, raw, len);
	else if (t8 >= 0 && n <= UINT8_MAX)
		mpw_put(w, t8, n, 1, raw, len);
	else if (n <= UINT16_MAX)
		mpw_put(w, t16, n, 2, raw, len);
	else if (n <= UINT32_MAX)
		mpw_put(w, t32, n, 4, raw, len);
	else
		w->overflow = true; /* not representable in msgpack */
}

void mpw_str(struct mpw *w, const char *s, size_t len)
{
	mpw_len_head(w, len, 0xa0, 32, 0xd9, 0xda, 0xdb, s, len);
}

void mpw_bin(struct mpw *w, const void *b, size_t len)
{
	mpw_len_head(w, len, -1, 0, 0xc4, 0xc5, 0xc6, b, len);
}

void mpw_map(struct mpw *w, uint32_t n)
{
	mpw_len_head(w, n, 0x80, 16, -1, 0xde, 0xdf, NULL, 0);
}

void mpw_array(struct mpw *w, uint32_t n)
{
	mpw_len_head(w, n, 0x90, 16, -1, 0xdc, 0xdd, NULL, 0);
}

void mpw_nil(struct mpw *w)
{
	mpw_put(w, 0xc0, 0, 0, NULL, 0);
}

void mpw_bool(struct mpw *w, bool v)
{
	mpw_put(w, v ? 0xc3 : 0xc2, 0, 0, NULL, 0);
}

void mpw_raw(struct mpw *w, const void *b, size_t len)
{
	mpw_put(w, -1, 0, 0, b, len);
}
