/*
 * remote.c - names across hubs; see remote.h for the model.
 *
 * NATS subjects (P = prefix, H = a hub):
 *   P.n.H.<name>   SEND (no reply subject) or REQUEST (reply subject) to
 *                  the exported <name> of hub H;
 *   P.r.H.<token>  the answer to request <token> of hub H's bridge;
 *   P.p.H          hub H's present exported names, one per line.
 * Headers: Ipchub-Origin (sending hub), Ipchub-From (sender's name, if
 * any), Ipchub-Timeout (ms), Ipchub-Code / Ipchub-Msg (an error answer),
 * Ipchub-Uid / Ipchub-Key (claims, trusted links only), Ipchub-Bye.
 *
 * Tables: out[] holds local requests to remote names until the answer,
 * the deadline or the hub's loss; in[] holds requests from other hubs
 * until the local answer (the broker always gives one: they carry a
 * deadline). Both are direct-mapped by a sequence number, so a slot still
 * busy REMOTE_SLOTS requests later answers LIMIT instead of growing.
 */
#include "remote.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fed.h"
#include "frame.h"
#include "ipchub.h"
#include "limits.h"
#include "msg.h"
#include "name.h"

#define SUBJ_MAX 512 /* prefix + hub + name, with room */
#define HUB_NAMES_MAX 256 /* names one hub may announce */
/* Ids of the requests the bridge delivers locally: apart from the
 * session's own counter (register, watch), so both never collide. */
#define IN_ID_BASE (UINT64_C(1) << 62)

#define H_ORIGIN "Ipchub-Origin"
#define H_FROM "Ipchub-From"
#define H_TIMEOUT "Ipchub-Timeout"
#define H_CODE "Ipchub-Code"
#define H_MSG "Ipchub-Msg"
#define H_UID "Ipchub-Uid"
#define H_KEY "Ipchub-Key"
#define H_BYE "Ipchub-Bye"

struct out_req {
	uint64_t token;      /* 0: free */
	uint64_t id, from_id; /* the local REQUEST */
	int hub;             /* index in hubs[] */
	bool broker_times;   /* it has a deadline: the broker answers TIMEOUT */
	int64_t deadline_ms;
	char name[IPCHUB_MAX_NAME + 1]; /* name@hub: the reply's origin */
};

struct in_req {
	uint64_t id;         /* 0: free */
	char reply[SUBJ_MAX];
};

struct hub_ent {
	char name[IPCHUB_MAX_HUB + 1];
	bool alive;
	int64_t last_ms;
	int n;
	char (*names)[IPCHUB_MAX_NAME + 1]; /* registered here as name@hub */
};

struct remote {
	struct remote_conf c;
	natsConnection *nc;   /* borrowed */
	ipchub *h;            /* owned, under lk */
	pthread_mutex_t lk;
	pthread_t thread;
	bool thread_started;
	atomic_bool stop, failed;
	natsSubscription *subs[3]; /* owned */
	bool owned[REMOTE_MAX_EXPORTS]; /* exported name present locally */
	int64_t last_state_ms;
	struct hub_ent hubs[REMOTE_MAX_HUBS];
	int n_hubs;
	struct out_req out[REMOTE_SLOTS];
	uint64_t out_seq;
	struct in_req in[REMOTE_SLOTS];
	uint64_t in_seq;
	/* counters */
	atomic_uint_fast64_t sent_out, sent_in, answered, failed_out,
		failed_in, late, hubs_lost;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void drain(struct remote *r);

/* ---- NATS helpers ---------------------------------------------------- */

static natsStatus hdr_u64(natsMsg *m, const char *k, uint64_t v)
{
	char b[24];

	snprintf(b, sizeof(b), "%" PRIu64, v);
	return natsMsgHeader_Set(m, k, b);
}

/* Optional numeric header: true and *v when present and well-formed. */
static bool get_u64(natsMsg *m, const char *k, uint64_t *v)
{
	const char *s = NULL;
	char *end;

	if (natsMsgHeader_Get(m, k, &s) != NATS_OK || !s || !*s)
		return false;
	errno = 0;
	unsigned long long x = strtoull(s, &end, 10);
	if (errno || *end || s[0] == '-')
		return false;
	*v = x;
	return true;
}

/* Claims of a local message as headers (trusted links only). */
static natsStatus put_claims(const struct remote *r, natsMsg *nm,
			     const ipchub_msg *m)
{
	static const char hex[] = "0123456789abcdef";
	natsStatus s = NATS_OK;
	size_t klen = 0;
	const uint8_t *key = ipchub_msg_key_id(m, &klen);
	char kx[65];

	if (!r->c.trusted)
		return NATS_OK;
	if (ipchub_msg_uid(m) != UINT32_MAX)
		s = hdr_u64(nm, H_UID, ipchub_msg_uid(m));
	if (s == NATS_OK && key && klen <= 32) {
		for (size_t i = 0; i < klen; i++) {
			kx[2 * i] = hex[key[i] >> 4];
			kx[2 * i + 1] = hex[key[i] & 15];
		}
		kx[2 * klen] = '\0';
		s = natsMsgHeader_Set(nm, H_KEY, kx);
	}
	return s;
}

/* Claims from headers into f (trusted links only; malformed: none). */
static void take_claims(const struct remote *r, natsMsg *nm,
			struct frame_hdr *f)
{
	const char *kx = NULL;
	uint64_t uid;
	size_t n;

	if (!r->c.trusted)
		return;
	if (get_u64(nm, H_UID, &uid) && uid <= UINT32_MAX) {
		f->claim_uid = (uint32_t)uid;
		f->has |= FH(WK_CLAIM_UID);
	}
	if (natsMsgHeader_Get(nm, H_KEY, &kx) != NATS_OK || !kx)
		return;
	n = strlen(kx);
	if (n == 0 || n > 64 || n % 2)
		return;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned v;

		if (sscanf(kx + 2 * i, "%2x", &v) != 1)
			return;
		f->claim_key[i] = (uint8_t)v;
	}
	f->claim_key_len = (uint16_t)(n / 2);
	f->has |= FH(WK_CLAIM_KEY);
}

/* Publish an error answer to a NATS reply subject. */
static void nats_answer_error(struct remote *r, const char *reply, int code,
			      const char *text)
{
	natsMsg *nm = NULL;
	natsStatus s = natsMsg_Create(&nm, reply, NULL, NULL, 0);

	if (s == NATS_OK)
		s = natsMsgHeader_Set(nm, H_ORIGIN, r->c.hub);
	if (s == NATS_OK)
		s = hdr_u64(nm, H_CODE, (uint64_t)code);
	if (s == NATS_OK && text)
		s = natsMsgHeader_Set(nm, H_MSG, text);
	if (s == NATS_OK)
		s = natsConnection_PublishMsg(r->nc, nm);
	natsMsg_Destroy(nm);
	if (s != NATS_OK)
		atomic_fetch_add(&r->failed_in, 1);
}

/* ---- answers to local requesters (lk held) --------------------------- */

/* REPLY to the local request of slot o, as o->name; code 0: a real reply
 * with body and claims from nm. */
static void local_reply(struct remote *r, struct out_req *o, int code,
			const char *text, natsMsg *nm)
{
	struct frame_hdr f;
	const void *body = NULL;
	size_t len = 0;
	int rc;

	frame_init(&f, WIRE_REPLY);
	f.id = o->id;
	f.to_id = o->from_id;
	f.has |= FH(WK_ID) | FH(WK_TO_ID);
	frame_set_str(&f, WK_ORIGIN, o->name, strlen(o->name));
	if (code) {
		f.code = (uint32_t)code;
		f.has |= FH(WK_CODE);
		if (text)
			frame_set_str(&f, WK_MSG, text,
				      strnlen(text, IPCHUB_MAX_ERRMSG));
	}
	if (nm) {
		body = natsMsg_GetData(nm);
		len = (size_t)natsMsg_GetDataLength(nm);
		take_claims(r, nm, &f);
	}
	o->token = 0;
	rc = fed_queue(r->h, &f, len ? body : NULL, len, NULL);
	if (rc == IPCHUB_OK) {
		atomic_fetch_add(&r->answered, 1);
	} else {
		atomic_fetch_add(&r->failed_out, 1);
		fprintf(stderr, "ipchub-bridge: reply to %s: %s\n", o->name,
			ipchub_code_name(rc));
		if (rc != IPCHUB_E_BAD_BODY && rc != IPCHUB_E_TOO_LARGE)
			atomic_store(&r->failed, true);
	}
}

/* Answer a local REQUEST message at once (no slot). */
static void local_refuse(struct remote *r, const ipchub_msg *m, int code,
			 const char *text)
{
	struct out_req o = {.id = ipchub_msg_id(m),
			    .from_id = ipchub_msg_from_id(m)};

	snprintf(o.name, sizeof(o.name), "%s", ipchub_msg_to(m));
	local_reply(r, &o, code, text, NULL);
}

/* ---- hubs (lk held) -------------------------------------------------- */

static int hub_find(const struct remote *r, const char *name, size_t len)
{
	for (int i = 0; i < r->n_hubs; i++)
		if (strlen(r->hubs[i].name) == len &&
		    memcmp(r->hubs[i].name, name, len) == 0)
			return i;
	return -1;
}

/* out = name@hub, cut at IPCHUB_MAX_NAME (callers checked it fits). */
static void remote_name(char *out, const char *name, const char *hub)
{
	size_t n = strlen(name), h = strlen(hub);

	if (n > IPCHUB_MAX_NAME - 1)
		n = IPCHUB_MAX_NAME - 1;
	if (h > IPCHUB_MAX_NAME - 1 - n)
		h = IPCHUB_MAX_NAME - 1 - n;
	memcpy(out, name, n);
	out[n] = '@';
	memcpy(out + n + 1, hub, h);
	out[n + 1 + h] = '\0';
}

/* Release every name of hub i here and fail its pending requests. */
static void hub_lose(struct remote *r, int i, const char *why)
{
	struct hub_ent *e = &r->hubs[i];
	char full[IPCHUB_MAX_NAME + 1];

	for (int k = 0; k < e->n; k++) {
		remote_name(full, e->names[k], e->name);
		(void)ipchub_unregister(r->h, full, REMOTE_DEAD_MS);
	}
	e->n = 0;
	e->alive = false;
	for (uint32_t s = 0; s < REMOTE_SLOTS; s++)
		if (r->out[s].token && r->out[s].hub == i)
			local_reply(r, &r->out[s], IPCHUB_E_PEER_GONE, why, NULL);
	atomic_fetch_add(&r->hubs_lost, 1);
	fprintf(stderr, "ipchub-bridge: hub %s %s: its names are released\n",
		e->name, why);
}

static bool in_list(char (*v)[IPCHUB_MAX_NAME + 1], int n, const char *s,
		    size_t len)
{
	for (int k = 0; k < n; k++)
		if (strlen(v[k]) == len && memcmp(v[k], s, len) == 0)
			return true;
	return false;
}

/* Make the names registered for hub i those of the list body (one per
 * line; malformed lines are skipped). */
static void hub_reconcile(struct remote *r, int i, const char *body,
			  size_t blen)
{
	struct hub_ent *e = &r->hubs[i];
	char (*next)[IPCHUB_MAX_NAME + 1] = calloc(HUB_NAMES_MAX, sizeof(*next));
	char full[IPCHUB_MAX_NAME + 1];
	size_t hl = strlen(e->name);
	int n = 0;

	if (!next)
		return; /* try again at the next heartbeat */
	for (size_t p = 0; p < blen && n < HUB_NAMES_MAX;) {
		const char *nl = memchr(body + p, '\n', blen - p);
		size_t l = nl ? (size_t)(nl - (body + p)) : blen - p;

		if (l && name_check(body + p, l) == WIRE_E_OK &&
		    l + 1 + hl <= IPCHUB_MAX_NAME && !in_list(next, n, body + p, l)) {
			memcpy(next[n], body + p, l);
			next[n++][l] = '\0';
		}
		p += l + 1;
	}
	for (int k = 0; k < e->n; k++) {
		if (in_list(next, n, e->names[k], strlen(e->names[k])))
			continue;
		remote_name(full, e->names[k], e->name);
		(void)ipchub_unregister(r->h, full, REMOTE_DEAD_MS);
	}
	for (int k = 0; k < n; k++) {
		if (in_list(e->names, e->n, next[k], strlen(next[k])))
			continue;
		remote_name(full, next[k], e->name);
		int rc = ipchub_register(r->h, full, REMOTE_DEAD_MS);
		if (rc != IPCHUB_OK)
			fprintf(stderr, "ipchub-bridge: register %s: %s\n", full,
				ipchub_code_name(rc));
	}
	free(e->names);
	e->names = next;
	e->n = n;
}

/* ---- our presence (lk held) ------------------------------------------ */

static void publish_state(struct remote *r, bool bye)
{
	char subj[SUBJ_MAX], body[REMOTE_MAX_EXPORTS * (IPCHUB_MAX_NAME + 1)];
	size_t len = 0;
	natsMsg *nm = NULL;
	natsStatus s;

	snprintf(subj, sizeof(subj), "%s.p.%s", r->c.prefix, r->c.hub);
	for (int i = 0; !bye && i < r->c.n_exports; i++) {
		if (!r->owned[i])
			continue;
		size_t l = strlen(r->c.exports[i]);
		memcpy(body + len, r->c.exports[i], l);
		len += l;
		body[len++] = '\n';
	}
	s = natsMsg_Create(&nm, subj, NULL, len ? body : NULL, (int)len);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(nm, H_ORIGIN, r->c.hub);
	if (s == NATS_OK && bye)
		s = natsMsgHeader_Set(nm, H_BYE, "1");
	if (s == NATS_OK)
		s = natsConnection_PublishMsg(r->nc, nm);
	natsMsg_Destroy(nm);
	r->last_state_ms = now_ms();
	(void)s; /* the next heartbeat repeats it */
}

static void on_presence_local(struct remote *r, const ipchub_msg *m)
{
	const char *name = ipchub_msg_presence_name(m);
	int ev = ipchub_msg_presence_event(m);

	for (int i = 0; name && i < r->c.n_exports; i++) {
		if (strcmp(name, r->c.exports[i]) != 0)
			continue;
		r->owned[i] = ev == IPCHUB_PRESENCE_OWNED ||
			      ev == IPCHUB_PRESENCE_REGISTERED;
		publish_state(r, false);
		return;
	}
}

/* ---- local -> NATS (lk held) ----------------------------------------- */

/* A local SEND or REQUEST to name@hub: carry it to that hub. */
static void to_remote(struct remote *r, const ipchub_msg *m)
{
	bool req = ipchub_msg_kind(m) == IPCHUB_KIND_REQUEST;
	const char *to = ipchub_msg_to(m), *at = to ? strchr(to, '@') : NULL;
	const char *from = ipchub_msg_from(m);
	char subj[SUBJ_MAX], reply[SUBJ_MAX];
	struct out_req *o = NULL;
	natsMsg *nm = NULL;
	natsStatus s;
	size_t len = 0;
	const void *body = ipchub_msg_body(m, &len);
	int hub = at ? hub_find(r, at + 1, strlen(at + 1)) : -1;

	if (hub < 0 || !r->hubs[hub].alive) {
		/* Released between the broker's routing and now. */
		atomic_fetch_add(&r->failed_out, 1);
		if (req)
			local_refuse(r, m, IPCHUB_E_NO_SUCH_PEER,
				     "the remote hub is not reachable");
		return;
	}
	snprintf(subj, sizeof(subj), "%s.n.%s.%.*s", r->c.prefix, at + 1,
		 (int)(at - to), to);
	if (req) {
		uint64_t token = ++r->out_seq;
		uint32_t t = ipchub_msg_timeout(m);

		o = &r->out[token & (REMOTE_SLOTS - 1)];
		if (o->token) {
			atomic_fetch_add(&r->failed_out, 1);
			local_refuse(r, m, IPCHUB_E_LIMIT,
				     "too many requests in flight through the bridge");
			return;
		}
		o->token = token;
		o->id = ipchub_msg_id(m);
		o->from_id = ipchub_msg_from_id(m);
		o->hub = hub;
		o->broker_times = t != 0;
		o->deadline_ms = now_ms() + (t ? t : REMOTE_NO_DEADLINE_MS) +
				 REMOTE_GRACE_MS;
		snprintf(o->name, sizeof(o->name), "%s", to);
		snprintf(reply, sizeof(reply), "%s.r.%s.%" PRIu64, r->c.prefix,
			 r->c.hub, token);
	}
	s = natsMsg_Create(&nm, subj, req ? reply : NULL, len ? body : NULL,
			   (int)len);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(nm, H_ORIGIN, r->c.hub);
	if (s == NATS_OK && from && *from && !strchr(from, '@'))
		s = natsMsgHeader_Set(nm, H_FROM, from);
	if (s == NATS_OK && req)
		s = hdr_u64(nm, H_TIMEOUT, ipchub_msg_timeout(m)
				? ipchub_msg_timeout(m) : REMOTE_NO_DEADLINE_MS);
	if (s == NATS_OK)
		s = put_claims(r, nm, m);
	if (s == NATS_OK)
		s = natsConnection_PublishMsg(r->nc, nm);
	natsMsg_Destroy(nm);
	if (s == NATS_OK) {
		atomic_fetch_add(&r->sent_out, 1);
		return;
	}
	atomic_fetch_add(&r->failed_out, 1);
	fprintf(stderr, "ipchub-bridge: to %s: %s\n", to, natsStatus_GetText(s));
	if (o)
		local_reply(r, o, IPCHUB_E_PEER_GONE, "the NATS link refused it", NULL);
}

/* The local answer (REPLY, or the broker's ERROR) to a request another
 * hub sent: carry it back. */
static void answer_remote(struct remote *r, const ipchub_msg *m)
{
	uint64_t id = ipchub_msg_id(m);
	struct in_req *q = &r->in[id & (REMOTE_SLOTS - 1)];
	const char *from = ipchub_msg_from(m);
	int code = ipchub_msg_error(m);
	natsMsg *nm = NULL;
	natsStatus s;
	size_t len = 0;
	const void *body = ipchub_msg_body(m, &len);

	if (q->id != id) {
		atomic_fetch_add(&r->late, 1);
		return;
	}
	q->id = 0;
	if (ipchub_msg_kind(m) != IPCHUB_KIND_REPLY) {
		nats_answer_error(r, q->reply, code, ipchub_msg_error_text(m));
		atomic_fetch_add(&r->answered, 1);
		return;
	}
	s = natsMsg_Create(&nm, q->reply, NULL, len ? body : NULL, (int)len);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(nm, H_ORIGIN, r->c.hub);
	if (s == NATS_OK && from && *from)
		s = natsMsgHeader_Set(nm, H_FROM, from);
	if (s == NATS_OK && code)
		s = hdr_u64(nm, H_CODE, (uint64_t)code);
	if (s == NATS_OK && code && ipchub_msg_error_text(m))
		s = natsMsgHeader_Set(nm, H_MSG, ipchub_msg_error_text(m));
	if (s == NATS_OK)
		s = put_claims(r, nm, m);
	if (s == NATS_OK)
		s = natsConnection_PublishMsg(r->nc, nm);
	natsMsg_Destroy(nm);
	if (s == NATS_OK)
		atomic_fetch_add(&r->answered, 1);
	else
		atomic_fetch_add(&r->failed_in, 1);
}

static void handle_local(struct remote *r, ipchub_msg *m)
{
	switch (ipchub_msg_kind(m)) {
	case IPCHUB_KIND_SEND:
	case IPCHUB_KIND_REQUEST:
		to_remote(r, m);
		break;
	case IPCHUB_KIND_REPLY:
		answer_remote(r, m);
		break;
	case IPCHUB_KIND_PRESENCE:
		on_presence_local(r, m);
		break;
	case MSG_KIND_ERROR:
		if (m->ref == WIRE_REQUEST && ipchub_msg_id(m) >= IN_ID_BASE) {
			answer_remote(r, m);
		} else if (m->ref == WIRE_REPLY) {
			atomic_fetch_add(&r->late, 1); /* requester gave up */
		} else {
			/* A SEND from another hub the hub could not deliver
			 * (the name went, its queue was full): counted and
			 * logged here; the remote sender is not told
			 * (docs/FEDERATION.md). */
			atomic_fetch_add(&r->failed_in, 1);
			fprintf(stderr, "ipchub-bridge: delivery to %s: %s\n",
				ipchub_msg_to(m) ? ipchub_msg_to(m) : "?",
				ipchub_code_name(ipchub_msg_error(m)));
		}
		break;
	default:
		break;
	}
	ipchub_msg_free(m);
}

static void drain(struct remote *r)
{
	ipchub_msg *m = NULL;
	int rc;

	while ((rc = ipchub_recv(r->h, 0, &m)) == IPCHUB_OK)
		handle_local(r, m);
	if (rc != IPCHUB_E_TIMEOUT && rc != IPCHUB_E_INTERRUPTED &&
	    !atomic_exchange(&r->failed, true))
		fprintf(stderr, "ipchub-bridge: local hub (names): %s\n",
			ipchub_code_name(rc));
}

/* ---- NATS -> local --------------------------------------------------- */

/* P.n.<us>.<name>: a SEND or REQUEST for one of our exported names. */
static void on_named(natsConnection *nc, natsSubscription *sub, natsMsg *nm,
		     void *closure)
{
	struct remote *r = closure;
	const char *subj = natsMsg_GetSubject(nm), *reply = natsMsg_GetReply(nm);
	const char *origin = NULL, *from = NULL;
	size_t skip = strlen(r->c.prefix) + 3 + strlen(r->c.hub) + 1;
	const char *name = strlen(subj) > skip ? subj + skip : "";
	struct frame_hdr f;
	struct in_req *q = NULL;
	uint64_t t = 0;
	bool exported = false;
	int rc;

	(void)nc;
	for (int i = 0; i < r->c.n_exports; i++)
		exported |= strcmp(name, r->c.exports[i]) == 0;
	if (natsMsgHeader_Get(nm, H_ORIGIN, &origin) != NATS_OK || !origin ||
	    name_check_hub(origin, strlen(origin)) != WIRE_E_OK || !exported) {
		atomic_fetch_add(&r->failed_in, 1);
		if (reply)
			nats_answer_error(r, reply, IPCHUB_E_NO_SUCH_PEER,
					  "not exported by this hub");
		goto done;
	}
	frame_init(&f, reply ? WIRE_REQUEST : WIRE_SEND);
	frame_set_str(&f, WK_TO, name, strlen(name));
	if (natsMsgHeader_Get(nm, H_FROM, &from) == NATS_OK && from &&
	    name_check(from, strlen(from)) == WIRE_E_OK &&
	    strlen(from) + 1 + strlen(origin) <= IPCHUB_MAX_NAME) {
		char full[IPCHUB_MAX_NAME + 1];

		remote_name(full, from, origin);
		frame_set_str(&f, WK_ORIGIN, full, strlen(full));
	}
	take_claims(r, nm, &f);
	pthread_mutex_lock(&r->lk);
	if (atomic_load(&r->stop) || !r->h) {
		pthread_mutex_unlock(&r->lk);
		goto done;
	}
	if (reply) {
		f.id = IN_ID_BASE + ++r->in_seq;
		q = &r->in[f.id & (REMOTE_SLOTS - 1)];
		if (q->id || strlen(reply) >= sizeof(q->reply)) {
			pthread_mutex_unlock(&r->lk);
			atomic_fetch_add(&r->failed_in, 1);
			nats_answer_error(r, reply, IPCHUB_E_LIMIT,
					  "too many requests in flight through the bridge");
			goto done;
		}
		q->id = f.id;
		snprintf(q->reply, sizeof(q->reply), "%s", reply);
		if (!get_u64(nm, H_TIMEOUT, &t) || t == 0 ||
		    t > IPCHUB_MAX_TIMEOUT_MS)
			t = REMOTE_NO_DEADLINE_MS;
		f.timeout = (uint32_t)t;
		f.has |= FH(WK_ID) | FH(WK_TIMEOUT);
	}
	{
		size_t len = (size_t)natsMsg_GetDataLength(nm);

		rc = fed_queue(r->h, &f, len ? natsMsg_GetData(nm) : NULL, len,
			       NULL);
	}
	/* Write (and take what the hub sent meanwhile) unless more are
	 * waiting: the next one writes both, and the service thread drains
	 * at its next wake-up. */
	int pending = 0;
	bool last = natsSubscription_GetPending(sub, &pending, NULL) != NATS_OK ||
		    pending == 0;
	if (rc == IPCHUB_OK && last)
		rc = ipchub_flush(r->h, REMOTE_DEAD_MS);
	if (rc == IPCHUB_OK || rc == IPCHUB_E_TIMEOUT) {
		atomic_fetch_add(&r->sent_in, 1);
	} else {
		atomic_fetch_add(&r->failed_in, 1);
		if (q) {
			q->id = 0;
			nats_answer_error(r, reply, rc, ipchub_strerror(rc));
		}
		if (rc != IPCHUB_E_BAD_BODY && rc != IPCHUB_E_TOO_LARGE &&
		    rc != IPCHUB_E_BAD_NAME)
			atomic_store(&r->failed, true);
	}
	if (last)
		drain(r);
	pthread_mutex_unlock(&r->lk);
done:
	natsMsg_Destroy(nm);
}

/* P.r.<us>.<token>: the answer to one of our requests. */
static void on_answer(natsConnection *nc, natsSubscription *sub, natsMsg *nm,
		      void *closure)
{
	struct remote *r = closure;
	const char *subj = natsMsg_GetSubject(nm), *dot = strrchr(subj, '.');
	const char *text = NULL;
	uint64_t token = 0, code = 0;
	char *end;

	(void)nc;
	(void)sub;
	if (dot)
		token = strtoull(dot + 1, &end, 10);
	if (!dot || *end || token == 0)
		goto done;
	if (!get_u64(nm, H_CODE, &code) || code >= WIRE_E_CODE_MAX_)
		code = 0;
	(void)natsMsgHeader_Get(nm, H_MSG, &text);
	if (natsMsg_IsNoResponders(nm)) {
		/* The NATS server's own answer: nobody subscribes to that
		 * hub's subjects any more (its bridge is gone). */
		code = IPCHUB_E_PEER_GONE;
		text = "no bridge serves that hub now";
	}
	pthread_mutex_lock(&r->lk);
	struct out_req *o = &r->out[token & (REMOTE_SLOTS - 1)];
	/* Stopping: remote_stop() answers what is still pending. */
	bool live = r->h && !atomic_load(&r->stop);
	if (live && o->token == token)
		local_reply(r, o, (int)code, text, code ? NULL : nm);
	else if (live)
		atomic_fetch_add(&r->late, 1); /* timed out here already */
	if (live) {
		(void)ipchub_flush(r->h, REMOTE_DEAD_MS);
		drain(r);
	}
	pthread_mutex_unlock(&r->lk);
done:
	natsMsg_Destroy(nm);
}

/* P.p.<hub>: another hub's present names (or its goodbye). */
static void on_presence(natsConnection *nc, natsSubscription *sub,
			natsMsg *nm, void *closure)
{
	struct remote *r = closure;
	const char *subj = natsMsg_GetSubject(nm), *bye = NULL;
	const char *hub = subj + strlen(r->c.prefix) + 3;
	size_t hl = strlen(subj) > strlen(r->c.prefix) + 3 ? strlen(hub) : 0;
	int i;

	(void)nc;
	(void)sub;
	if (!hl || name_check_hub(hub, hl) != WIRE_E_OK ||
	    strcmp(hub, r->c.hub) == 0)
		goto done;
	pthread_mutex_lock(&r->lk);
	if (atomic_load(&r->stop) || !r->h) {
		pthread_mutex_unlock(&r->lk);
		goto done;
	}
	i = hub_find(r, hub, hl);
	if (i < 0 && r->n_hubs < REMOTE_MAX_HUBS) {
		i = r->n_hubs++;
		memcpy(r->hubs[i].name, hub, hl + 1);
	}
	if (i < 0) {
		fprintf(stderr, "ipchub-bridge: more than %d hubs: %s ignored\n",
			REMOTE_MAX_HUBS, hub);
	} else if (natsMsgHeader_Get(nm, H_BYE, &bye) == NATS_OK) {
		if (r->hubs[i].alive)
			hub_lose(r, i, "said goodbye");
	} else {
		if (!r->hubs[i].alive)
			fprintf(stderr, "ipchub-bridge: hub %s is up\n", hub);
		r->hubs[i].alive = true;
		r->hubs[i].last_ms = now_ms();
		hub_reconcile(r, i, natsMsg_GetData(nm),
			      (size_t)natsMsg_GetDataLength(nm));
	}
	drain(r);
	pthread_mutex_unlock(&r->lk);
done:
	natsMsg_Destroy(nm);
}

/* ---- the service thread ---------------------------------------------- */

static void tick(struct remote *r)
{
	int64_t now = now_ms();

	if (now - r->last_state_ms >= REMOTE_HEARTBEAT_MS)
		publish_state(r, false);
	for (int i = 0; i < r->n_hubs; i++)
		if (r->hubs[i].alive && now - r->hubs[i].last_ms > REMOTE_DEAD_MS)
			hub_lose(r, i, "is silent");
	for (uint32_t s = 0; s < REMOTE_SLOTS; s++) {
		struct out_req *o = &r->out[s];

		if (!o->token || now < o->deadline_ms)
			continue;
		if (o->broker_times) /* the requester has had TIMEOUT */
			o->token = 0;
		else
			local_reply(r, o, IPCHUB_E_TIMEOUT,
				    "no answer from the remote hub", NULL);
	}
}

static void *service(void *arg)
{
	struct remote *r = arg;

	while (!atomic_load(&r->stop) && !atomic_load(&r->failed)) {
		struct pollfd p = {.fd = ipchub_fd(r->h), .events = POLLIN};

		(void)poll(&p, 1, REMOTE_TICK_MS);
		pthread_mutex_lock(&r->lk);
		drain(r);
		tick(r);
		(void)ipchub_flush(r->h, 0);
		pthread_mutex_unlock(&r->lk);
	}
	return NULL;
}

/* ---- life cycle ------------------------------------------------------ */

int remote_start(const struct remote_conf *conf, natsConnection *nc,
		 struct remote **out)
{
	struct ipchub_opts o = {.socket = conf->socket, .agent = "ipchub-bridge (names)"};
	struct remote *r = calloc(1, sizeof(*r));
	char subj[SUBJ_MAX];
	natsStatus s = NATS_OK;
	int rc;

	if (!r) {
		fprintf(stderr, "ipchub-bridge: out of memory\n");
		return -1;
	}
	r->c = *conf;
	r->nc = nc;
	pthread_mutex_init(&r->lk, NULL);
	rc = fed_connect(&o, &r->h);
	if (rc != IPCHUB_OK) {
		fprintf(stderr, "ipchub-bridge: local hub (names): %s\n",
			ipchub_strerror(rc));
		remote_stop(r);
		return -1;
	}
	for (int i = 0; rc == IPCHUB_OK && i < conf->n_exports; i++) {
		rc = ipchub_watch(r->h, conf->exports[i], REMOTE_DEAD_MS, NULL);
		if (rc != IPCHUB_OK)
			fprintf(stderr, "ipchub-bridge: export name %s: %s\n",
				conf->exports[i], ipchub_code_name(rc));
	}
	static const char *const what[3] = {"n", "r", "p"};
	static natsMsgHandler const cb[3] = {on_named, on_answer, on_presence};
	for (int i = 0; rc == IPCHUB_OK && s == NATS_OK && i < 3; i++) {
		if (i < 2)
			snprintf(subj, sizeof(subj), "%s.%s.%s.>", conf->prefix,
				 what[i], conf->hub);
		else
			snprintf(subj, sizeof(subj), "%s.p.*", conf->prefix);
		s = natsConnection_Subscribe(&r->subs[i], nc, subj, cb[i], r);
	}
	if (rc == IPCHUB_OK && s == NATS_OK) {
		pthread_mutex_lock(&r->lk);
		drain(r); /* the watches' first answers */
		publish_state(r, false);
		pthread_mutex_unlock(&r->lk);
		if (pthread_create(&r->thread, NULL, service, r) == 0)
			r->thread_started = true;
		else
			s = NATS_SYS_ERROR;
	}
	if (rc != IPCHUB_OK || s != NATS_OK) {
		if (s != NATS_OK)
			fprintf(stderr, "ipchub-bridge: names: %s\n",
				natsStatus_GetText(s));
		remote_stop(r);
		return -1;
	}
	*out = r;
	return 0;
}

bool remote_failed(const struct remote *r)
{
	return atomic_load(&r->failed);
}

void remote_stop(struct remote *r)
{
	if (!r)
		return;
	bool drained = true;

	atomic_store(&r->stop, true);
	if (r->thread_started)
		pthread_join(r->thread, NULL);
	/* No callback may run once r is freed: drain each subscription and
	 * wait for its callbacks to finish (they see stop and do nothing). */
	for (int i = 0; i < 3; i++)
		if (r->subs[i]) {
			if (natsSubscription_Drain(r->subs[i]) != NATS_OK ||
			    natsSubscription_WaitForDrainCompletion(r->subs[i], 2000) != NATS_OK)
				drained = false;
			natsSubscription_Destroy(r->subs[i]);
		}
	if (r->h) {
		pthread_mutex_lock(&r->lk);
		publish_state(r, true);
		for (uint32_t s = 0; s < REMOTE_SLOTS; s++)
			if (r->out[s].token)
				local_reply(r, &r->out[s], IPCHUB_E_PEER_GONE,
					    "the bridge is stopping", NULL);
		(void)ipchub_flush(r->h, 1000);
		ipchub_close(r->h);
		r->h = NULL;
		pthread_mutex_unlock(&r->lk);
	}
	if (!drained) {
		/* A callback may still hold r: leave it to the process exit. */
		fprintf(stderr, "ipchub-bridge: names: NATS callbacks did not finish\n");
		return;
	}
	for (int i = 0; i < r->n_hubs; i++)
		free(r->hubs[i].names);
	pthread_mutex_destroy(&r->lk);
	free(r);
}

void remote_counters(const struct remote *r, FILE *f)
{
	if (!r)
		return;
	fprintf(f, "ipchub-bridge: names: to-remote %" PRIu64 " from-remote %" PRIu64
		" answered %" PRIu64 " failed-out %" PRIu64 " failed-in %" PRIu64
		" late %" PRIu64 " hubs-lost %" PRIu64 "\n",
		(uint64_t)r->sent_out, (uint64_t)r->sent_in,
		(uint64_t)r->answered, (uint64_t)r->failed_out,
		(uint64_t)r->failed_in, (uint64_t)r->late,
		(uint64_t)r->hubs_lost);
}
