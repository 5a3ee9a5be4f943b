/*
 * mpr.c - bounded msgpack reader over scattered bytes.
 *
 * Model: struct mpr is a cursor (segment i, offset off) plus a budget
 * `left`. mpr_init() clamps the budget to the bytes the segments really
 * hold, so the single invariant "left <= bytes remaining in the segments"
 * holds from then on, and every primitive only has to compare its request
 * with `left` before touching memory. All multi-byte reads go through
 * mpr_copy(), which walks segment boundaries, so a value may be split at
 * any byte (including inside a length or a number) and empty segments are
 * stepped over.
 *
 * mpr_skip_value() is iterative: a fixed array of IPCHUB_MAX_BODY_DEPTH + 1
 * counters of items still to read per open container. A max_depth above
 * IPCHUB_MAX_BODY_DEPTH is clamped to it. Declared lengths and counts are
 * compared with `left` (each item takes at least one byte) before any
 * walking, so a hostile count costs O(1).
 */
#include "mpr.h"

#include <stdbool.h>
#include <string.h>

#include "limits.h"

void mpr_init(struct mpr *r, const struct iovec *seg, size_t nseg,
	      uint64_t limit)
{
	uint64_t total = 0;

	for (size_t k = 0; k < nseg; k++)
		total += seg[k].iov_len;
	r->seg = seg;
	r->nseg = nseg;
	r->i = 0;
	r->off = 0;
	r->left = limit < total ? limit : total;
}

void mpr_init_buf(struct mpr *r, struct iovec *iov_store, const void *buf,
		  size_t len)
{
	iov_store->iov_base = (void *)buf;
	iov_store->iov_len = len;
	mpr_init(r, iov_store, 1, len);
}

/* Position on a segment with at least one unread byte. Only called with
 * left > 0, which (by the init invariant) guarantees one exists. */
static void mpr_settle(struct mpr *r)
{
	while (r->off >= r->seg[r->i].iov_len) {
		r->i++;
		r->off = 0;
	}
}

int mpr_byte_slow(struct mpr *r, uint8_t *out)
{
	if (r->left < 1)
		return MPR_E_SHORT;
	mpr_settle(r);
	*out = ((const uint8_t *)r->seg[r->i].iov_base)[r->off];
	r->off++;
	r->left--;
	return MPR_OK;
}

/* Copy (dst != NULL) or skip (dst == NULL) n bytes. */
static int mpr_take(struct mpr *r, uint8_t *dst, uint64_t n)
{
	if (n > r->left)
		return MPR_E_SHORT;
	r->left -= n;
	if (r->off + n <= r->seg[r->i].iov_len) {
		/* Common case: inside the current segment. */
		if (dst)
			memcpy(dst, (const uint8_t *)r->seg[r->i].iov_base +
					    r->off, (size_t)n);
		r->off += (size_t)n;
		return MPR_OK;
	}
	while (n > 0) {
		mpr_settle(r);
		size_t avail = r->seg[r->i].iov_len - r->off;
		size_t chunk = n < avail ? (size_t)n : avail;
		if (dst) {
			memcpy(dst, (const uint8_t *)r->seg[r->i].iov_base + r->off,
			       chunk);
			dst += chunk;
		}
		r->off += chunk;
		n -= chunk;
	}
	return MPR_OK;
}

int mpr_copy(struct mpr *r, void *dst, size_t n)
{
	return mpr_take(r, dst, n);
}

int mpr_skip(struct mpr *r, uint64_t n)
{
	return mpr_take(r, NULL, n);
}

/* Big-endian unsigned of 1, 2, 4 or 8 bytes. */
static int mpr_be(struct mpr *r, unsigned nbytes, uint64_t *out)
{
	uint8_t b[8];
	uint64_t v = 0;
	int st;

	if (nbytes <= r->left && r->off + nbytes <= r->seg[r->i].iov_len) {
		/* Common case: inside the current segment. */
		const uint8_t *p = (const uint8_t *)r->seg[r->i].iov_base +
				   r->off;

		for (unsigned k = 0; k < nbytes; k++)
			v = (v << 8) | p[k];
		r->off += nbytes;
		r->left -= nbytes;
		*out = v;
		return MPR_OK;
	}
	st = mpr_take(r, b, nbytes);

	if (st != MPR_OK)
		return st;
	for (unsigned k = 0; k < nbytes; k++)
		v = (v << 8) | b[k];
	*out = v;
	return MPR_OK;
}

int mpr_read_uint_slow(struct mpr *r, uint64_t *out)
{
	uint8_t t;
	uint64_t v;
	int st = mpr_byte(r, &t);

	if (st != MPR_OK)
		return st;
	if (t <= 0x7f) {
		*out = t;
		return MPR_OK;
	}
	if (t >= 0xcc && t <= 0xcf) { /* uint8..uint64 */
		st = mpr_be(r, 1u << (t - 0xcc), &v);
		if (st == MPR_OK)
			*out = v;
		return st;
	}
	if (t >= 0xd0 && t <= 0xd3) { /* int8..int64: accept if >= 0 */
		unsigned nbytes = 1u << (t - 0xd0);
		st = mpr_be(r, nbytes, &v);
		if (st != MPR_OK)
			return st;
		if (v >> (nbytes * 8 - 1)) /* sign bit set */
			return MPR_E_TYPE;
		*out = v;
		return MPR_OK;
	}
	return t == 0xc1 ? MPR_E_INVALID : MPR_E_TYPE;
}

int mpr_read_map(struct mpr *r, uint32_t *count)
{
	uint8_t t;
	uint64_t n;
	int st = mpr_byte(r, &t);

	if (st != MPR_OK)
		return st;
	if (t >= 0x80 && t <= 0x8f)
		n = t & 0x0f;
	else if (t == 0xde || t == 0xdf)
		st = mpr_be(r, t == 0xde ? 2 : 4, &n);
	else
		return t == 0xc1 ? MPR_E_INVALID : MPR_E_TYPE;
	if (st != MPR_OK)
		return st;
	if (2 * n > r->left) /* each key and value takes a byte at least */
		return MPR_E_SHORT;
	*count = (uint32_t)n;
	return MPR_OK;
}

int mpr_read_array(struct mpr *r, uint32_t *count)
{
	uint8_t t;
	uint64_t n;
	int st = mpr_byte(r, &t);

	if (st != MPR_OK)
		return st;
	if (t >= 0x90 && t <= 0x9f)
		n = t & 0x0f;
	else if (t == 0xdc || t == 0xdd)
		st = mpr_be(r, t == 0xdc ? 2 : 4, &n);
	else
		return t == 0xc1 ? MPR_E_INVALID : MPR_E_TYPE;
	if (st != MPR_OK)
		return st;
	if (n > r->left) /* each element takes a byte at least */
		return MPR_E_SHORT;
	*count = (uint32_t)n;
	return MPR_OK;
}

/* Read the header of a str (want_bin false) or bin value: its length. */
static int mpr_blob_len(struct mpr *r, bool want_bin, uint64_t *len)
{
	uint8_t t;
	int st = mpr_byte(r, &t);

	if (st != MPR_OK)
		return st;
	if (!want_bin && t >= 0xa0 && t <= 0xbf) {
		*len = t & 0x1f;
		return MPR_OK;
	}
	if (!want_bin && t >= 0xd9 && t <= 0xdb)
		return mpr_be(r, 1u << (t - 0xd9), len);
	if (want_bin && t >= 0xc4 && t <= 0xc6)
		return mpr_be(r, 1u << (t - 0xc4), len);
	return t == 0xc1 ? MPR_E_INVALID : MPR_E_TYPE;
}

int mpr_read_str(struct mpr *r, char *dst, size_t cap, size_t *len)
{
	uint64_t n;
	int st = mpr_blob_len(r, false, &n);

	if (st != MPR_OK)
		return st;
	if (cap == 0 || n > cap - 1)
		return MPR_E_RANGE;
	if (n > r->left)
		return MPR_E_SHORT;
	mpr_take(r, (uint8_t *)dst, n); /* cannot fail: checked above */
	dst[n] = '\0';
	*len = (size_t)n;
	return MPR_OK;
}

int mpr_read_bin_exact(struct mpr *r, void *dst, size_t len)
{
	uint64_t n;
	int st = mpr_blob_len(r, true, &n);

	if (st != MPR_OK)
		return st;
	if (n != len)
		return MPR_E_RANGE;
	return mpr_take(r, dst, n);
}

int mpr_read_bin(struct mpr *r, void *dst, size_t cap, size_t *len)
{
	uint64_t n;
	int st = mpr_blob_len(r, true, &n);

	if (st != MPR_OK)
		return st;
	if (n > cap)
		return MPR_E_RANGE;
	st = mpr_take(r, dst, n);
	if (st == MPR_OK)
		*len = (size_t)n;
	return st;
}

/* Classify the value starting with byte t: either a container with *items
 * children (array n, map 2n), or a scalar whose remaining payload is
 * *skip bytes. Lengths that must be read from the stream are read here. */
static int mpr_value_head(struct mpr *r, uint8_t t, uint64_t *items,
			  uint64_t *skip, bool *container)
{
	uint64_t n = 0;
	int st = MPR_OK;

	*container = false;
	*skip = 0;
	if (t <= 0x7f || t >= 0xe0) /* positive / negative fixint */
		return MPR_OK;
	if (t <= 0x8f) { /* fixmap */
		*container = true;
		*items = 2u * (t & 0x0f);
		return MPR_OK;
	}
	if (t <= 0x9f) { /* fixarray */
		*container = true;
		*items = t & 0x0f;
		return MPR_OK;
	}
	if (t <= 0xbf) { /* fixstr */
		*skip = t & 0x1f;
		return MPR_OK;
	}
	switch (t) {
	case 0xc0: /* nil */
	case 0xc2: /* false */
	case 0xc3: /* true */
		return MPR_OK;
	case 0xc1:
		return MPR_E_INVALID;
	case 0xc4: case 0xc5: case 0xc6: /* bin 8/16/32 */
		st = mpr_be(r, 1u << (t - 0xc4), &n);
		*skip = n;
		return st;
	case 0xc7: case 0xc8: case 0xc9: /* ext 8/16/32: len, type, data */
		st = mpr_be(r, 1u << (t - 0xc7), &n);
		*skip = n + 1;
		return st;
	case 0xca: /* float32 */
		*skip = 4;
		return MPR_OK;
	case 0xcb: /* float64 */
		*skip = 8;
		return MPR_OK;
	case 0xcc: case 0xcd: case 0xce: case 0xcf: /* uint 8..64 */
		*skip = 1u << (t - 0xcc);
		return MPR_OK;
	case 0xd0: case 0xd1: case 0xd2: case 0xd3: /* int 8..64 */
		*skip = 1u << (t - 0xd0);
		return MPR_OK;
	case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8: /* fixext */
		*skip = 1 + (1u << (t - 0xd4));
		return MPR_OK;
	case 0xd9: case 0xda: case 0xdb: /* str 8/16/32 */
		st = mpr_be(r, 1u << (t - 0xd9), &n);
		*skip = n;
		return st;
	case 0xdc: case 0xdd: /* array 16/32 */
		st = mpr_be(r, t == 0xdc ? 2 : 4, &n);
		*container = true;
		*items = n;
		return st;
	default: /* 0xde, 0xdf: map 16/32 */
		st = mpr_be(r, t == 0xde ? 2 : 4, &n);
		*container = true;
		*items = 2 * n;
		return st;
	}
}

int mpr_skip_value(struct mpr *r, unsigned max_depth)
{
	/* todo[d]: items still to read in the container open at depth d;
	 * todo[0] is the single top-level value. */
	uint64_t todo[IPCHUB_MAX_BODY_DEPTH + 1];
	unsigned depth = 0;

	if (max_depth > IPCHUB_MAX_BODY_DEPTH)
		max_depth = IPCHUB_MAX_BODY_DEPTH;
	todo[0] = 1;
	for (;;) {
		while (todo[depth] == 0) {
			if (depth == 0)
				return MPR_OK;
			depth--;
		}
		todo[depth]--;

		if (r->i < r->nseg && r->off < r->seg[r->i].iov_len) {
			size_t avail = r->seg[r->i].iov_len - r->off;
			uint64_t span = mpr_flat_span((const uint8_t *)r->seg[r->i].iov_base +
							  r->off,
						  avail);

			if (span > r->left)
				return MPR_E_SHORT;
			if (span != 0 && span <= avail) {
				r->off += (size_t)span;
				r->left -= span;
				continue;
			}
			if (span != 0) {
				int st = mpr_skip(r, span);

				if (st != MPR_OK)
					return st;
				continue;
			}
		}

		uint8_t t;
		uint64_t items = 0, skip = 0;
		bool container;
		int st = mpr_byte(r, &t);
		if (st != MPR_OK)
			return st;
		st = mpr_value_head(r, t, &items, &skip, &container);
		if (st != MPR_OK)
			return st;
		if (!container) {
			st = mpr_skip(r, skip);
			if (st != MPR_OK)
				return st;
			continue;
		}
		if (items > r->left)
			return MPR_E_SHORT;
		if (depth + 1 > max_depth)
			return MPR_E_DEPTH;
		todo[++depth] = items;
	}
}

int mpr_validate(const void *buf, size_t len, unsigned max_depth)
{
	struct iovec iov;
	struct mpr r;
	int st;

	mpr_init_buf(&r, &iov, buf, len);
	st = mpr_skip_value(&r, max_depth);
	if (st == MPR_OK && mpr_left(&r) != 0)
		st = MPR_E_INVALID; /* trailing bytes after the value */
	return st;
}

const char *mpr_strerror(int status)
{
	switch (status) {
	case MPR_OK:
		return "ok";
	case MPR_E_SHORT:
		return "data ends before the value does";
	case MPR_E_TYPE:
		return "value has an unexpected type";
	case MPR_E_INVALID:
		return "malformed msgpack (byte 0xc1 or trailing bytes)";
	case MPR_E_DEPTH:
		return "value nested too deeply";
	case MPR_E_RANGE:
		return "length, count or value out of range";
	default:
		return "unknown msgpack reader status";
	}
}
