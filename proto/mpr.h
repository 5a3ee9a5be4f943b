/*
 * mpr.h - bounded msgpack reader over scattered bytes.
 *
 * Model: a reader is a cursor over a list of byte segments (an iovec array,
 * e.g. the chains of a libevent evbuffer, or a single contiguous buffer)
 * with a byte budget. Every primitive checks the remaining budget before it
 * touches a byte, so a reader can never run past the data it was given, and
 * no count or length declared by the data is ever used to allocate: callers
 * copy into fixed buffers whose capacity they pass in. The reader does not
 * own the segments; they must outlive it and stay unchanged while it is used.
 *
 * mpr_skip_value() is the validator that guards every msgpack-c unpack of
 * untrusted bytes: iterative (no recursion), depth-limited, and it rejects a
 * container whose declared element count exceeds the bytes left (each
 * element takes at least one byte), before walking it.
 *
 * Return codes: MPR_OK, or one of the MPR_E_* values below. On error the
 * reader's position is unspecified; callers treat the input as bad.
 */
#ifndef IPCHUB_PROTO_MPR_H
#define IPCHUB_PROTO_MPR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

enum mpr_status {
	MPR_OK = 0,
	MPR_E_SHORT = 1,   /* data ends before the value does */
	MPR_E_TYPE = 2,    /* value is not of the expected type */
	MPR_E_INVALID = 3, /* byte 0xc1 (never used), or malformed */
	MPR_E_DEPTH = 4,   /* nesting deeper than allowed */
	MPR_E_RANGE = 5    /* length/count/value larger than allowed */
};

struct mpr {
	const struct iovec *seg; /* borrowed */
	size_t nseg;
	size_t i;      /* current segment */
	size_t off;    /* offset within segment i */
	uint64_t left; /* bytes the reader may still consume */
};

/* Start reading at the beginning of seg[0..nseg), consuming at most limit
 * bytes (pass the frame's length; it may be less than the segments hold). */
void mpr_init(struct mpr *r, const struct iovec *seg, size_t nseg,
	      uint64_t limit);

/* Same over one contiguous buffer; *iov_store must outlive the reader. */
void mpr_init_buf(struct mpr *r, struct iovec *iov_store, const void *buf,
		  size_t len);

static inline uint64_t mpr_left(const struct mpr *r) { return r->left; }

int mpr_byte_slow(struct mpr *r, uint8_t *out);

/* One byte; inline for the common case of a byte left in this segment. */
static inline int mpr_byte(struct mpr *r, uint8_t *out)
{
	if (r->left > 0 && r->off < r->seg[r->i].iov_len) {
		*out = ((const uint8_t *)r->seg[r->i].iov_base)[r->off++];
		r->left--;
		return MPR_OK;
	}
	return mpr_byte_slow(r, out);
}
int mpr_copy(struct mpr *r, void *dst, size_t n);
int mpr_skip(struct mpr *r, uint64_t n);

/* Typed reads. Each consumes exactly one msgpack value. */
int mpr_read_uint_slow(struct mpr *r, uint64_t *out);

/* Positive fixint, uint*, or int* >= 0. Inline for a positive fixint (keys,
 * kinds, small ids) inside the current segment. */
static inline int mpr_read_uint(struct mpr *r, uint64_t *out)
{
	if (r->left > 0 && r->off < r->seg[r->i].iov_len) {
		uint8_t t = ((const uint8_t *)r->seg[r->i].iov_base)[r->off];

		if (t <= 0x7f) {
			r->off++;
			r->left--;
			*out = t;
			return MPR_OK;
		}
	}
	return mpr_read_uint_slow(r, out);
}
int mpr_read_map(struct mpr *r, uint32_t *count);
/* Array header: element count in *count (MPR_E_SHORT when fewer bytes are
 * left than the count, since each element takes at least one). */
int mpr_read_array(struct mpr *r, uint32_t *count);
/* str: copies up to cap-1 bytes and NUL-terminates; MPR_E_RANGE if longer. */
int mpr_read_str(struct mpr *r, char *dst, size_t cap, size_t *len);
/* bin: exactly len bytes expected; MPR_E_RANGE if the length differs. */
int mpr_read_bin_exact(struct mpr *r, void *dst, size_t len);
/* bin of at most cap bytes; actual length in *len. */
int mpr_read_bin(struct mpr *r, void *dst, size_t cap, size_t *len);

static inline uint64_t mpr_be_at(const uint8_t *p, unsigned nbytes)
{
	uint64_t v = 0;

	for (unsigned k = 0; k < nbytes; k++)
		v = (v << 8) | p[k];
	return v;
}

/* Bytes taken by the scalar (flat: no values inside) msgpack value at p,
 * when its type byte and length field lie within the avail (>= 1) bytes
 * there; 0 for a container, for 0xc1, or for a length field cut by the end
 * of the span: ask the bounded walker then. The result may exceed avail
 * (the value is cut there). The fast path of mpr_skip_value() and of the
 * client's body checks, for the common case of a flat body. */
static inline uint64_t mpr_flat_span(const uint8_t *p, size_t avail)
{
	uint8_t t = p[0];
	unsigned lb;

	if (t <= 0x7f || t >= 0xe0)
		return 1;
	if (t <= 0x9f)
		return 0;
	if (t <= 0xbf)
		return 1u + (t & 0x1fu);
	switch (t) {
	case 0xc0: case 0xc2: case 0xc3:
		return 1;
	case 0xc4: case 0xc5: case 0xc6: /* bin 8/16/32 */
	case 0xd9: case 0xda: case 0xdb: /* str 8/16/32 */
		lb = 1u << (t >= 0xd9 ? t - 0xd9 : t - 0xc4);
		return avail > lb ? 1u + lb + mpr_be_at(p + 1, lb) : 0;
	case 0xc7: case 0xc8: case 0xc9: /* ext 8/16/32: len, type, data */
		lb = 1u << (t - 0xc7);
		return avail > lb ? 2u + lb + mpr_be_at(p + 1, lb) : 0;
	case 0xca:
		return 5;
	case 0xcb:
		return 9;
	case 0xcc: case 0xcd: case 0xce: case 0xcf:
		return 1u + (1u << (t - 0xcc));
	case 0xd0: case 0xd1: case 0xd2: case 0xd3:
		return 1u + (1u << (t - 0xd0));
	case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
		return 2u + (1u << (t - 0xd4));
	default: /* 0xc1, array 16/32, map 16/32 */
		return 0;
	}
}

/* Skip one complete value of any type, nesting at most max_depth levels
 * (a scalar has depth 0, [[1]] has depth 2). This is the validator. A
 * max_depth above IPCHUB_MAX_BODY_DEPTH is treated as that maximum (the
 * walker's stack is a fixed array of that depth). */
int mpr_skip_value(struct mpr *r, unsigned max_depth);

/* Validate that buf[0..len) is exactly one msgpack value within max_depth. */
int mpr_validate(const void *buf, size_t len, unsigned max_depth);

const char *mpr_strerror(int status);

#endif
