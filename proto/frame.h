/*
 * frame.h - frame codec of wire protocol v1: the length prefix, the header
 * and the body check. Knows bytes only: no sockets, no libevent.
 *
 * Model: a decoded header is a fixed-size struct (struct frame_hdr) that
 * owns copies of all its strings, so decoding never allocates and the
 * struct is valid after the input bytes are gone. `has` records which keys
 * were present. Decoding validates everything the protocol says about a
 * header - msgpack well-formedness, key types, duplicate and unknown keys,
 * which keys each kind requires and allows in each direction, whether a
 * body may follow - so code above it can trust every field it reads.
 *
 * Encoding writes keys in ascending order using the shortest msgpack
 * forms into a caller buffer of at least FRAME_ENC_MAX bytes.
 */
#ifndef IPCHUB_PROTO_FRAME_H
#define IPCHUB_PROTO_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "limits.h"
#include "mpr.h"
#include "wire.h"

#define FH(key) (UINT64_C(1) << (key))

/* Buffer size that always holds a length prefix plus any header. */
#define FRAME_ENC_MAX (IPCHUB_LEN_PREFIX + IPCHUB_MAX_HEADER)

enum frame_dir {
	FRAME_C2B = 0, /* sent by a client, read by the broker */
	FRAME_B2C = 1  /* sent by the broker, read by a client */
};

/* Field order matters: frame_init() and frame_decode() zero every field
 * before `to` (scalars and lengths: keep new scalar fields there) and only
 * the first byte of each string; array contents are valid only when their
 * key's `has` bit is set. */
struct frame_hdr {
	uint64_t has; /* FH(WK_x) for each key present */
	uint8_t kind;
	uint64_t id;
	uint64_t to_id;
	uint64_t from_id;
	uint64_t conn;
	uint64_t count;
	uint32_t code;
	uint32_t ver;
	uint32_t ver_min;
	uint32_t max_frame;
	uint32_t timeout;
	uint32_t flags;
	uint32_t uid;
	uint32_t ref;
	uint32_t policy;
	uint64_t sub;
	uint32_t event;
	uint32_t reason;
	uint32_t fds;
	uint32_t claim_uid;
	uint64_t memfd;
	uint16_t to_len, from_len, name_len, msg_len, agent_len, topic_len;
	uint16_t filter_len;
	uint16_t broker_len, key_len, sig_len, origin_len, claim_key_len;
	char to[IPCHUB_MAX_NAME + 1];
	char from[IPCHUB_MAX_NAME + 1];
	char name[IPCHUB_MAX_NAME + 1];
	char topic[IPCHUB_MAX_NAME + 1];
	char origin[IPCHUB_MAX_NAME + 1];
	char filter[IPCHUB_MAX_FILTER + 1];
	char msg[IPCHUB_MAX_ERRMSG + 1];
	char agent[IPCHUB_MAX_AGENT + 1];
	char broker[IPCHUB_BROKER_ID_LEN + 1];
	uint8_t key[32];
	uint8_t challenge[32];
	uint8_t pk[32];
	uint8_t nonce[32];
	uint8_t sig[64];
	uint8_t claim_key[32];
};

/* Read the 4-byte big-endian length prefix. */
static inline uint32_t frame_get_len(const uint8_t p[4])
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	       ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static inline void frame_put_len(uint8_t p[4], uint32_t len)
{
	p[0] = (uint8_t)(len >> 24);
	p[1] = (uint8_t)(len >> 16);
	p[2] = (uint8_t)(len >> 8);
	p[3] = (uint8_t)len;
}

/* Check a declared frame length before anything is read or allocated.
 * Returns WIRE_E_OK, WIRE_E_BAD_FRAME (< IPCHUB_MIN_FRAME) or
 * WIRE_E_TOO_LARGE (> max_frame). */
int frame_len_check(uint32_t len, uint32_t max_frame);

/* Reset h to an empty header of the given kind. */
void frame_init(struct frame_hdr *h, enum wire_kind kind);

/* Set a string field (WK_TO, WK_FROM, WK_NAME, WK_MSG, WK_AGENT,
 * WK_BROKER, WK_TOPIC, WK_FILTER); the string is copied, truncated to the field's
 * capacity (callers validate lengths first). */
void frame_set_str(struct frame_hdr *h, enum wire_key key, const char *s,
		   size_t len);

/* Decode a header from r, which must cover exactly one frame (limit = the
 * frame's length). On success r is positioned at the first body byte and
 * *has_body says whether one follows (mpr_left(r) > 0).
 * Returns WIRE_E_OK or WIRE_E_BAD_FRAME; on failure *why (if non-NULL) is
 * set to a static description, and h is unspecified. Name grammar is not
 * checked here (a bad name is not a malformed frame; see name.h). */
int frame_decode(struct mpr *r, enum frame_dir dir, struct frame_hdr *h,
		 bool *has_body, const char **why);

/* Check that the rest of r is exactly one msgpack value nested at most
 * IPCHUB_MAX_BODY_DEPTH deep. Returns WIRE_E_OK or WIRE_E_BAD_BODY. */
int frame_body_check(struct mpr *r, const char **why);

/* Check the rest of r as the body of a batched SEND or PUBLISH (WF_BATCH): one
 * msgpack array of 1..IPCHUB_MAX_BATCH elements, each a valid body nested
 * at most IPCHUB_MAX_BODY_DEPTH deep (the array itself does not count),
 * and nothing after it. *count is the array's length once its header has
 * been read (0 if it could not be). Returns WIRE_E_OK or WIRE_E_BAD_BODY.
 * Splitting a checked batch: read the array header with mpr_read_array(),
 * then each element spans the bytes one mpr_skip_value() passes over. */
int frame_batch_check(struct mpr *r, uint32_t *count, const char **why);

/* Encode the header alone into out (cap >= IPCHUB_MAX_HEADER). Returns the
 * number of bytes written. Asserts the header fits. */
size_t frame_encode_hdr(const struct frame_hdr *h, uint8_t *out, size_t cap);

/* Encode prefix + header for a frame whose body will be body_len bytes,
 * into out (cap >= FRAME_ENC_MAX). Returns bytes written; the caller
 * appends exactly body_len body bytes after them. */
size_t frame_encode(const struct frame_hdr *h, size_t body_len, uint8_t *out,
		    size_t cap);

/* Whether a kind may carry a body (in at least one direction: MONITOR
 * only from the broker). */
bool frame_kind_has_body(int kind);

/* "SEND", "NO_SUCH_PEER", ...; "UNKNOWN" for values outside the enums. */
const char *frame_kind_name(int kind);
const char *frame_code_name(int code);
/* One-sentence English description of a code. */
const char *frame_code_text(int code);
/* Whether the broker closes the connection after sending this code. */
bool frame_code_is_fatal(int code);

#endif
