/*
 * transcript.c - see transcript.h. Every field has a fixed offset; the
 * function writes each byte of the output exactly once, so no byte of a
 * previous use of the buffer can leak into a signature.
 */
#include "transcript.h"

#include <string.h>

static void put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void put_u64(uint8_t *p, uint64_t v)
{
	put_u32(p, (uint32_t)(v >> 32));
	put_u32(p + 4, (uint32_t)v);
}

void transcript_build(uint8_t out[TRANSCRIPT_LEN],
		      const struct transcript_in *in)
{
	_Static_assert(sizeof(TRANSCRIPT_LABEL_CLIENT) - 1 <=
			       TRANSCRIPT_LABEL_LEN,
		       "label fits its field");
	_Static_assert(TRANSCRIPT_OFF_PK + AUTH_PK_LEN == TRANSCRIPT_LEN,
		       "fields cover the transcript");
	_Static_assert(TRANSCRIPT_OFF_CONN - TRANSCRIPT_OFF_BROKER ==
			       IPCHUB_BROKER_ID_LEN,
		       "broker id field");

	memset(out, 0, TRANSCRIPT_LABEL_LEN);
	memcpy(out + TRANSCRIPT_OFF_LABEL, TRANSCRIPT_LABEL_CLIENT,
	       sizeof(TRANSCRIPT_LABEL_CLIENT) - 1);
	put_u32(out + TRANSCRIPT_OFF_VER, in->ver);
	memcpy(out + TRANSCRIPT_OFF_BROKER, in->broker, IPCHUB_BROKER_ID_LEN);
	put_u64(out + TRANSCRIPT_OFF_CONN, in->conn);
	memcpy(out + TRANSCRIPT_OFF_CHALLENGE, in->challenge,
	       AUTH_CHALLENGE_LEN);
	memcpy(out + TRANSCRIPT_OFF_NONCE, in->nonce, AUTH_NONCE_LEN);
	put_u32(out + TRANSCRIPT_OFF_UID, in->uid);
	memcpy(out + TRANSCRIPT_OFF_PK, in->pk, AUTH_PK_LEN);
}

void pktext_format(const uint8_t pk[AUTH_PK_LEN], char *out, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	size_t pl = sizeof(PKTEXT_PREFIX) - 1;

	if (cap < PKTEXT_LEN + 1) {
		if (cap)
			out[0] = '\0';
		return;
	}
	memcpy(out, PKTEXT_PREFIX, pl);
	for (size_t i = 0; i < AUTH_PK_LEN; i++) {
		out[pl + 2 * i] = hex[pk[i] >> 4];
		out[pl + 2 * i + 1] = hex[pk[i] & 15];
	}
	out[PKTEXT_LEN] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int pktext_parse(const char *s, size_t len, uint8_t pk[AUTH_PK_LEN])
{
	size_t pl = sizeof(PKTEXT_PREFIX) - 1;
	uint8_t tmp[AUTH_PK_LEN];

	if (len != PKTEXT_LEN || memcmp(s, PKTEXT_PREFIX, pl) != 0)
		return -1;
	for (size_t i = 0; i < AUTH_PK_LEN; i++) {
		int hi = hexval(s[pl + 2 * i]), lo = hexval(s[pl + 2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		tmp[i] = (uint8_t)(hi << 4 | lo);
	}
	memcpy(pk, tmp, AUTH_PK_LEN);
	return 0;
}
