/*
 * auth.c - see auth.h for the model. Secrets handled here: the per-
 * connection challenge (random, single use, wiped with sodium_memzero as
 * soon as the first frame after HELLO has been seen) and the transcript
 * buffer (wiped after verification). Public keys are compared with
 * sodium_memcmp. The handshake FIFO is a TAILQ through conn_auth.hs_link;
 * a connection is on it iff in_handshake, and nhandshakes counts it.
 */
#include "auth.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "broker.h"
#include "conn.h"
#include "log.h"

_Static_assert(AUTH_PK_LEN == crypto_sign_PUBLICKEYBYTES, "pk size");
_Static_assert(AUTH_SIG_LEN == crypto_sign_BYTES, "sig size");

/* The only text a client ever sees for a failed authentication. */
#define AUTH_GENERIC_MSG "authentication failed"

int auth_init(struct auth_ctx *a, const struct broker_conf *conf, char *err,
	      size_t cap)
{
	int rc;

	memset(a, 0, sizeof(*a));
	TAILQ_INIT(&a->hs);
	a->require = conf->require_auth;
	a->max_handshakes = conf->max_handshakes;
	a->policy_path = conf->policy_path;
	if (a->require && !a->policy_path) {
		snprintf(err, cap,
			 "--require-auth needs --policy FILE (the keys that may authenticate)");
		return -EINVAL;
	}
	if (!a->policy_path)
		return 0;
	rc = policy_load(a->policy_path, &a->policy, err, cap);
	return rc < 0 ? rc : 0;
}

void auth_fini(struct auth_ctx *a)
{
	policy_free(a->policy);
	a->policy = NULL;
}

static void hs_leave(struct conn *c)
{
	struct auth_ctx *a = &c->b->auth;

	if (!c->auth.in_handshake)
		return;
	TAILQ_REMOVE(&a->hs, c, auth.hs_link);
	c->auth.in_handshake = false;
	a->nhandshakes--;
}

void auth_conn_start(struct conn *c)
{
	struct auth_ctx *a = &c->b->auth;
	static const char msg[] = "too many connections in the handshake";

	while (a->nhandshakes >= a->max_handshakes && !TAILQ_EMPTY(&a->hs)) {
		struct conn *old = TAILQ_FIRST(&a->hs);
		char d[384];

		hs_leave(old);
		log_info(&c->b->log,
			 "%s dropped: %u connections in the handshake (--max-handshakes)",
			 conn_desc(old, d, sizeof(d)), a->max_handshakes);
		conn_send_error(old, 0, WIRE_E_LIMIT, 0, NULL, 0, NULL, 0, msg);
		conn_flush(old);
		conn_kill(old, "handshake slots full");
	}
	TAILQ_INSERT_TAIL(&a->hs, c, auth.hs_link);
	c->auth.in_handshake = true;
	a->nhandshakes++;
}

void auth_conn_end(struct conn *c)
{
	hs_leave(c);
	sodium_memzero(c->auth.challenge, sizeof(c->auth.challenge));
	c->auth.challenge_live = false;
}

void auth_welcome(struct conn *c, struct frame_hdr *w)
{
	struct conn_auth *ca = &c->auth;

	randombytes_buf(ca->challenge, sizeof(ca->challenge));
	ca->challenge_live = true;
	ca->ver = w->ver;
	memcpy(w->challenge, ca->challenge, sizeof(w->challenge));
	w->has |= FH(WK_CHALLENGE);
	if (!c->b->auth.require)
		hs_leave(c);
}

/* The one answer to every authentication failure. */
static void fail_generic(struct conn *c, const char *why)
{
	char d[384];

	c->b->auth.failed++;
	log_warn(&c->b->log, "%s rejected: authentication failed: %s",
		 conn_desc(c, d, sizeof(d)), why);
	conn_send_error(c, 0, WIRE_E_AUTH_FAILED, WIRE_AUTH, NULL, 0, NULL, 0,
			AUTH_GENERIC_MSG);
	conn_close(c, "AUTH_FAILED");
}

static void on_auth(struct conn *c, const struct frame_hdr *h, bool first)
{
	struct broker *b = c->b;
	struct conn_auth *ca = &c->auth;
	uint8_t t[TRANSCRIPT_LEN], sig[AUTH_SIG_LEN];
	struct transcript_in in = {
		.ver = ca->ver,
		.broker = b->id_hex,
		.conn = c->id,
		.challenge = ca->challenge,
		.nonce = h->nonce,
		.uid = (uint32_t)c->cred.uid,
		.pk = h->pk,
	};
	bool in_place = first && ca->challenge_live;
	bool sig_len_ok = h->sig_len == AUTH_SIG_LEN;
	bool sig_ok, known;
	char d[384];

	/* Always build, verify and look up, whatever else is wrong, so a
	 * failure costs the same work whatever its reason. A short sig is
	 * zero-padded and then refused by sig_len_ok. */
	memset(sig, 0, sizeof(sig));
	memcpy(sig, h->sig, sig_len_ok ? AUTH_SIG_LEN : h->sig_len);
	transcript_build(t, &in);
	sig_ok = crypto_sign_verify_detached(sig, t, sizeof(t), h->pk) == 0;
	known = policy_knows_key(b->auth.policy, h->pk);
	sodium_memzero(t, sizeof(t));
	sodium_memzero(ca->challenge, sizeof(ca->challenge));
	ca->challenge_live = false;

	if (!(in_place & sig_len_ok & sig_ok & known)) {
		fail_generic(c, !in_place ? "AUTH is not the first frame after HELLO"
			     : !sig_len_ok ? "signature has the wrong length"
			     : !sig_ok ? "bad signature"
				       : "key not in the policy");
		return;
	}
	memcpy(ca->pk, h->pk, sizeof(ca->pk));
	ca->authenticated = true;
	if (ca->in_handshake) {
		hs_leave(c);
		evtimer_del(c->timer_ev);
	}
	{
		struct frame_hdr ok;
		char pkt[PKTEXT_LEN + 1];

		frame_init(&ok, WIRE_OK);
		ok.id = 0;
		ok.has |= FH(WK_ID);
		conn_send_hdr(c, &ok);
		pktext_format(ca->pk, pkt, sizeof(pkt));
		log_info(&b->log, "%s authenticated with key %s",
			 conn_desc(c, d, sizeof(d)), pkt);
	}
}

bool auth_filter(struct conn *c, struct conn_frame *f)
{
	struct conn_auth *ca = &c->auth;
	bool first = !ca->first_done;

	ca->first_done = true;
	if (f->h.kind == WIRE_AUTH) {
		on_auth(c, &f->h, first);
		return false;
	}
	if (first) {
		/* No AUTH came: the challenge can never be used. */
		sodium_memzero(ca->challenge, sizeof(ca->challenge));
		ca->challenge_live = false;
	}
	if (c->b->auth.require && !ca->authenticated && f->h.kind != WIRE_BYE) {
		char why[64];

		snprintf(why, sizeof(why), "%s before AUTH (--require-auth)",
			 frame_kind_name(f->h.kind));
		fail_generic(c, why);
		return false;
	}
	return true;
}

static bool uid_known(const struct conn *c)
{
	return c->cred.uid != (uid_t)-1;
}

int auth_may_register(const struct conn *c, const char *name, size_t len)
{
	const struct conn_auth *ca = &c->auth;

	return policy_allows(c->b->auth.policy, name, len,
			     ca->authenticated ? ca->pk : NULL,
			     (uint32_t)c->cred.uid, uid_known(c))
		       ? WIRE_E_OK
		       : WIRE_E_NOT_AUTHORIZED;
}

void auth_stamp(const struct conn *c, struct frame_hdr *h)
{
	if (!c->auth.authenticated)
		return;
	memcpy(h->key, c->auth.pk, AUTH_PK_LEN);
	h->key_len = AUTH_PK_LEN;
	h->has |= FH(WK_KEY);
}

/* Take from c every name the policy no longer lets it hold. */
static unsigned revoke_names(struct conn *c)
{
	struct broker *b = c->b;
	unsigned n = 0;
	uint32_t i = 0;

	while (i < c->names.n) {
		const struct name_entry *e = c->names.v[i];
		char name[IPCHUB_MAX_NAME + 1], msg[IPCHUB_MAX_NAME + 96], d[384];
		size_t len = e->len;

		if (auth_may_register(c, e->name, e->len) == WIRE_E_OK) {
			i++;
			continue;
		}
		memcpy(name, e->name, len + 1);
		/* Removes entry i; the next one moves into its place. */
		names_unregister(&b->names, &c->names, c, name, len);
		presence_notify(b, name, len, c, WIRE_PRESENCE_RELEASED,
				WIRE_REASON_REVOKED);
		snprintf(msg, sizeof(msg),
			 "policy reloaded: this connection may no longer own '%s'",
			 name);
		conn_send_error(c, 0, WIRE_E_NOT_AUTHORIZED, 0, NULL, 0, name,
				len, msg);
		log_info(&b->log, "%s lost name %s (policy reload)",
			 conn_desc(c, d, sizeof(d)), name);
		n++;
	}
	if (n)
		/* Senders parked on c for a lost name retry: it may now
		 * belong to nobody. */
		conn_wake_blocked(c);
	return n;
}

int auth_reload(struct broker *b, char *err, size_t cap)
{
	struct auth_ctx *a = &b->auth;
	struct policy *np = NULL, *old;
	struct conn *c, *next;
	unsigned lost = 0, closed = 0;
	int rc;

	/* The path is read from the running configuration each time: the
	 * configuration (and its strings) may have been replaced by an
	 * earlier reload. */
	a->policy_path = b->conf.policy_path;
	if (!a->policy_path)
		return 0;
	rc = policy_load(a->policy_path, &np, err, cap);
	if (rc < 0)
		return rc;
	old = a->policy;
	a->policy = np;
	policy_free(old);
	a->reloads++;
	/* conn_close() keeps c on the all-list (only the reaper's path
	 * moves it), but take the successor first anyway. */
	for (c = TAILQ_FIRST(&b->all); c; c = next) {
		next = TAILQ_NEXT(c, link);
		if (c->state != CONN_READY)
			continue;
		if (a->require && c->auth.authenticated &&
		    !policy_knows_key(a->policy, c->auth.pk)) {
			char d[384];

			log_warn(&b->log, "%s closed: its key left the policy",
				 conn_desc(c, d, sizeof(d)));
			conn_send_error(c, 0, WIRE_E_AUTH_FAILED, 0, NULL, 0,
					NULL, 0,
					"policy reloaded: this connection's key is no longer accepted");
			conn_close(c, "key revoked");
			closed++;
			continue;
		}
		lost += revoke_names(c);
	}
	log_info(&b->log,
		 "policy reloaded from %s: %zu rule(s); %u name(s) revoked, %u connection(s) closed",
		 a->policy_path, a->policy->n, lost, closed);
	return 0;
}
