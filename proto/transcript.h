/*
 * transcript.h - the bytes a client signs to authenticate (PROTOCOL.md
 * section 6.7), and the text form of public keys. Pure bytes: no
 * libsodium, no sockets. The broker and the client build the transcript
 * with the same function, so both sides agree by construction; signing
 * and verifying (crypto_sign_detached / _verify_detached) happen in
 * client/key.c and broker/auth.c.
 *
 * Model: struct transcript_in holds borrowed pointers to fixed-size
 * inputs; transcript_build() writes exactly TRANSCRIPT_LEN bytes into a
 * caller buffer in the documented layout (fixed offsets, big-endian
 * integers, no variable-length field), so there is no ambiguity to
 * exploit and another language can reproduce it byte for byte.
 */
#ifndef IPCHUB_PROTO_TRANSCRIPT_H
#define IPCHUB_PROTO_TRANSCRIPT_H

#include <stddef.h>
#include <stdint.h>

#include "limits.h"

/* Context label of a client's proof, NUL-padded to TRANSCRIPT_LABEL_LEN
 * bytes. The role ("client") is part of it: a signature made for this
 * purpose can never be taken for one made by another role or for another
 * purpose. */
#define TRANSCRIPT_LABEL_CLIENT "ipchub auth v1 client"
#define TRANSCRIPT_LABEL_LEN 32u

/* Field offsets of the transcript (PROTOCOL.md section 6.7). */
#define TRANSCRIPT_OFF_LABEL 0u
#define TRANSCRIPT_OFF_VER 32u        /* u32 BE negotiated version */
#define TRANSCRIPT_OFF_BROKER 36u     /* 32 ASCII hex: WELCOME broker */
#define TRANSCRIPT_OFF_CONN 68u       /* u64 BE: WELCOME conn */
#define TRANSCRIPT_OFF_CHALLENGE 76u  /* 32: WELCOME challenge */
#define TRANSCRIPT_OFF_NONCE 108u     /* 32: AUTH nonce */
#define TRANSCRIPT_OFF_UID 140u       /* u32 BE: client's uid (SO_PEERCRED) */
#define TRANSCRIPT_OFF_PK 144u        /* 32: AUTH pk */
#define TRANSCRIPT_LEN 176u

/* Ed25519 sizes (equal to libsodium's crypto_sign_* constants; the
 * modules that use libsodium assert that). */
#define AUTH_PK_LEN 32u
#define AUTH_SIG_LEN 64u
#define AUTH_CHALLENGE_LEN 32u
#define AUTH_NONCE_LEN 32u

/* Text form of a public key: "ed25519:" and 64 lowercase hex digits. */
#define PKTEXT_PREFIX "ed25519:"
#define PKTEXT_LEN (8u + 2u * AUTH_PK_LEN) /* without the NUL */

struct transcript_in {
	uint32_t ver;                 /* version chosen in WELCOME */
	const char *broker;           /* IPCHUB_BROKER_ID_LEN hex chars */
	uint64_t conn;                /* connection id from WELCOME */
	const uint8_t *challenge;     /* AUTH_CHALLENGE_LEN bytes */
	const uint8_t *nonce;         /* AUTH_NONCE_LEN bytes */
	uint32_t uid;                 /* the client's uid as the broker sees it */
	const uint8_t *pk;            /* AUTH_PK_LEN bytes */
};

/* Write the transcript of in into out (exactly TRANSCRIPT_LEN bytes).
 * in->broker must hold IPCHUB_BROKER_ID_LEN characters. */
void transcript_build(uint8_t out[TRANSCRIPT_LEN],
		      const struct transcript_in *in);

/* Format pk as "ed25519:<hex>" into out (cap >= PKTEXT_LEN + 1). */
void pktext_format(const uint8_t pk[AUTH_PK_LEN], char *out, size_t cap);

/* Parse exactly "ed25519:" + 64 hex digits (either case) of len bytes.
 * Returns 0 and fills pk, or -1 (pk untouched). */
int pktext_parse(const char *s, size_t len, uint8_t pk[AUTH_PK_LEN]);

#endif
