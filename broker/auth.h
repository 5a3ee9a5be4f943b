/*
 * auth.h - authentication and authorization in the broker: the
 * challenge/response handshake (PROTOCOL.md section 6.7), the cap on
 * connections still in the handshake, name ownership checks against the
 * policy (policy.h), identity stamps on delivered frames, and policy
 * reload on SIGHUP.
 *
 * Model: the broker owns one struct auth_ctx (the current policy, the
 * options, and the FIFO of connections still in the handshake, oldest
 * first). Each connection embeds a struct conn_auth: its challenge (live
 * from WELCOME until its first frame after HELLO, then wiped with
 * sodium_memzero whatever that frame was), whether it proved a key and
 * which, and its link in the handshake FIFO. A connection is "in the
 * handshake" from accept until WELCOME (or, with --require-auth, until a
 * successful AUTH); only then do the full frame limit and the absence of
 * a deadline apply. Every authentication failure - malformed proof,
 * wrong or unknown key, bad signature, AUTH out of place, a data frame
 * before AUTH under --require-auth - gets the same answer, ERROR
 * AUTH_FAILED "authentication failed" with id 0, and the connection is
 * closed; the specific reason goes to the broker's log only. The
 * signature is always verified and the key always looked up, whatever
 * else failed, so the work (and time) does not depend on the reason.
 */
#ifndef IPCHUB_BROKER_AUTH_H
#define IPCHUB_BROKER_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "conf.h"
#include "frame.h"
#include "policy.h"
#include "transcript.h"

struct broker;
struct conn;
struct conn_frame;

struct conn_auth {
	uint8_t challenge[AUTH_CHALLENGE_LEN]; /* wiped once used */
	uint8_t pk[AUTH_PK_LEN];              /* valid iff authenticated */
	uint32_t ver;                         /* version sent in WELCOME */
	bool challenge_live;                  /* sent, not yet used/wiped */
	bool authenticated;                   /* proved pk */
	bool first_done;                      /* a frame after HELLO was seen */
	bool in_handshake;                    /* on auth_ctx.hs */
	TAILQ_ENTRY(conn) hs_link;
};

TAILQ_HEAD(auth_hs_list, conn);

struct auth_ctx {
	struct policy *policy;   /* owned; NULL without --policy */
	const char *policy_path; /* borrowed from the configuration */
	bool require;            /* --require-auth */
	uint32_t max_handshakes;
	uint32_t nhandshakes;
	struct auth_hs_list hs;  /* connections in the handshake, oldest first */
	uint64_t reloads, failed; /* counters, for the log */
};

/* Load the policy (if conf->policy_path) and take the options. Returns 0,
 * or a negative errno with a one-line message in err. */
int auth_init(struct auth_ctx *a, const struct broker_conf *conf, char *err,
	      size_t cap);
void auth_fini(struct auth_ctx *a);

/* A new connection enters the handshake. If max_handshakes connections
 * already are in it, the oldest is told LIMIT and dropped. */
void auth_conn_start(struct conn *c);
/* The connection leaves the handshake (if it was in it) and its secrets
 * are wiped. Idempotent; called at detach and at free. */
void auth_conn_end(struct conn *c);

static inline bool auth_in_handshake(const struct conn_auth *ca)
{
	return ca->in_handshake;
}

/* Called while building WELCOME for c: adds a fresh challenge to w. After
 * it, c is out of the handshake unless --require-auth is set. */
void auth_welcome(struct conn *c, struct frame_hdr *w);

/* First look at every frame of a connection past HELLO. Handles AUTH
 * itself (OK {id: 0} or the generic failure) and refuses frames that
 * need authentication first. Returns true when dispatch should handle
 * the frame as usual; false when it has been handled (c may be closing:
 * check its state). */
bool auth_filter(struct conn *c, struct conn_frame *f);

/* Whether c may register name: WIRE_E_OK or WIRE_E_NOT_AUTHORIZED. */
int auth_may_register(const struct conn *c, const char *name, size_t len);

/* Add the sender's proven key id (WK_KEY) to a frame being delivered. */
void auth_stamp(const struct conn *c, struct frame_hdr *h);

/* Re-read the policy file (SIGHUP). On success the new policy replaces
 * the old one and every connection loses the names it may no longer hold
 * (each is told with ERROR {id: 0, code: NOT_AUTHORIZED, name}); with
 * --require-auth, a connection whose key left the policy is closed with
 * AUTH_FAILED. On failure the old policy stays and err says why.
 * Returns 0 or the negative errno of the failed load. */
int auth_reload(struct broker *b, char *err, size_t cap);

#endif
