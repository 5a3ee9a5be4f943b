/*
 * mpw.h - msgpack writer into a caller-owned fixed buffer.
 *
 * Model: used for frame headers, whose encoded size is bounded by
 * IPCHUB_MAX_HEADER, so they are built on the stack without any allocation
 * or realloc churn. Writes past the capacity set the overflow flag and are
 * dropped; callers size the buffer so that this cannot happen for valid
 * input and assert on it (writers may assert; readers may not).
 * Always uses the shortest encoding, as the msgpack spec recommends.
 */
#ifndef IPCHUB_PROTO_MPW_H
#define IPCHUB_PROTO_MPW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mpw {
	uint8_t *p;      /* borrowed */
	size_t cap;
	size_t len;
	bool overflow;
};

void mpw_init(struct mpw *w, void *buf, size_t cap);
void mpw_uint_slow(struct mpw *w, uint64_t v);

/* Inline for the most common header value, a positive fixint. */
static inline void mpw_uint(struct mpw *w, uint64_t v)
{
	if (v <= 0x7f && !w->overflow && w->len < w->cap) {
		w->p[w->len++] = (uint8_t)v;
		return;
	}
	mpw_uint_slow(w, v);
}
void mpw_int(struct mpw *w, int64_t v);
void mpw_str(struct mpw *w, const char *s, size_t len);
void mpw_bin(struct mpw *w, const void *b, size_t len);
void mpw_map(struct mpw *w, uint32_t n);
void mpw_array(struct mpw *w, uint32_t n);
void mpw_nil(struct mpw *w);
void mpw_bool(struct mpw *w, bool v);
/* Raw bytes (e.g. an already-encoded value). */
void mpw_raw(struct mpw *w, const void *b, size_t len);

#endif
