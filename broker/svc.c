/*
 * svc.c - see svc.h. The peers list is built with mpw into one buffer
 * sized for the worst-case entry count (bounded by max_frame), leaving
 * room in front for the array header, which is only known at the end.
 * This allocation happens per ipchub.peers request, not per message.
 */
#include "svc.h"

#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "log.h"
#include "mpw.h"
#include "stats.h"

/* Largest encoding of one peers entry: fixmap(6) + six keys (at most 5
 * bytes each) + str8 name (2 + 255) + three uint64 values (9 each) + the
 * "auth" bool (1) + the "key" bin8 (2 + 32). */
#define SVC_PEER_ENTRY_MAX \
	(1 + 6 * 5 + 2 + IPCHUB_MAX_NAME + 3 * 9 + 1 + 2 + AUTH_PK_LEN)
/* array32 header. */
#define SVC_ARRAY_HDR_MAX 5u

static int cmp_entry(const void *a, const void *b)
{
	const struct name_entry *x = *(const struct name_entry *const *)a;
	const struct name_entry *y = *(const struct name_entry *const *)b;
	size_t n = x->len < y->len ? x->len : y->len;
	int r = memcmp(x->name, y->name, n);

	return r ? r : (int)x->len - (int)y->len;
}

uint8_t *svc_peers_body(const struct names *t, size_t max_body, size_t *len)
{
	size_t n = names_count(t), cnt = 0, pos = 0, cap, at;
	const struct name_entry **v = NULL, *e;
	uint8_t *buf;
	struct mpw w;
	uint8_t ahdr[SVC_ARRAY_HDR_MAX];

	if (n) {
		v = malloc(n * sizeof(*v));
		if (!v)
			return NULL;
		for (size_t i = 0; (e = names_next(t, &pos)); i++)
			v[i] = e;
		qsort(v, n, sizeof(*v), cmp_entry);
	}
	cap = SVC_ARRAY_HDR_MAX + n * SVC_PEER_ENTRY_MAX;
	if (cap > max_body + SVC_ARRAY_HDR_MAX)
		cap = max_body + SVC_ARRAY_HDR_MAX;
	buf = malloc(cap);
	if (!buf) {
		free(v);
		return NULL;
	}
	at = SVC_ARRAY_HDR_MAX;
	for (size_t i = 0; i < n; i++) {
		const struct conn *c = v[i]->owner;
		uint8_t ent[SVC_PEER_ENTRY_MAX];

		mpw_init(&w, ent, sizeof(ent));
		mpw_map(&w, c->auth.authenticated ? 6 : 5);
		mpw_str(&w, "name", 4);
		mpw_str(&w, v[i]->name, v[i]->len);
		mpw_str(&w, "conn", 4);
		mpw_uint(&w, c->id);
		mpw_str(&w, "pid", 3);
		mpw_uint(&w, (uint64_t)(c->cred.pid > 0 ? c->cred.pid : 0));
		mpw_str(&w, "uid", 3);
		mpw_uint(&w, (uint64_t)c->cred.uid);
		mpw_str(&w, "auth", 4);
		mpw_bool(&w, c->auth.authenticated);
		if (c->auth.authenticated) {
			mpw_str(&w, "key", 3);
			mpw_bin(&w, c->auth.pk, AUTH_PK_LEN);
		}
		/* at counts the array header at its largest: a safe bound. */
		if (w.overflow || at + w.len > cap || at + w.len > max_body)
			break;
		memcpy(buf + at, ent, w.len);
		at += w.len;
		cnt++;
	}
	free(v);
	mpw_init(&w, ahdr, sizeof(ahdr));
	mpw_array(&w, (uint32_t)cnt);
	/* Put the array header right before the first entry. */
	memcpy(buf + SVC_ARRAY_HDR_MAX - w.len, ahdr, w.len);
	if (SVC_ARRAY_HDR_MAX - w.len)
		memmove(buf, buf + SVC_ARRAY_HDR_MAX - w.len,
			at - (SVC_ARRAY_HDR_MAX - w.len));
	*len = at - (SVC_ARRAY_HDR_MAX - w.len);
	return buf;
}

static void reply_hdr(struct frame_hdr *r, const struct frame_hdr *req)
{
	frame_init(r, WIRE_REPLY);
	r->id = req->id;
	r->from_id = 0;
	r->has |= FH(WK_ID) | FH(WK_FROM_ID);
	frame_set_str(r, WK_FROM, req->to, req->to_len);
}

static void svc_peers(struct conn *c, struct conn_frame *f)
{
	struct broker *b = c->b;
	struct frame_hdr r;
	uint8_t hbuf[FRAME_ENC_MAX];
	size_t blen, hlen;
	uint8_t *body = svc_peers_body(&b->names,
				       b->conf.max_frame - IPCHUB_MAX_HEADER,
				       &blen);

	if (!body) {
		conn_send_error(c, f->h.id, WIRE_E_INTERNAL, WIRE_REQUEST,
				f->h.to, f->h.to_len, NULL, 0, "out of memory");
		return;
	}
	reply_hdr(&r, &f->h);
	hlen = frame_encode(&r, blen, hbuf, sizeof(hbuf));
	if (monitor_active(b))
		monitor_tap(c, WIRE_MONITOR_OUT, &r, hbuf + IPCHUB_LEN_PREFIX,
			    hlen - IPCHUB_LEN_PREFIX, NULL, 0, body, blen);
	evbuffer_add(c->out, hbuf, hlen);
	evbuffer_add(c->out, body, blen);
	free(body);
	c->msgs_out++;
	broker_want_flush(b, c);
}

void svc_frame(struct conn *c, struct conn_frame *f)
{
	const struct frame_hdr *h = &f->h;
	bool peers = h->to_len == strlen(WIRE_SVC_PEERS) &&
		     memcmp(h->to, WIRE_SVC_PEERS, h->to_len) == 0;
	bool ping = h->to_len == strlen(WIRE_SVC_PING) &&
		    memcmp(h->to, WIRE_SVC_PING, h->to_len) == 0;
	bool stats = h->to_len == strlen(WIRE_SVC_STATS) &&
		     memcmp(h->to, WIRE_SVC_STATS, h->to_len) == 0;

	if (!peers && !ping && !stats) {
		char d[384];

		log_debug(&c->b->log, "%s: %s to unknown service %s",
			  conn_desc(c, d, sizeof(d)), frame_kind_name(h->kind),
			  h->to);
		conn_send_error_count(c, h->id, WIRE_E_NO_SUCH_PEER, h->kind,
				      h->to, h->to_len, NULL, 0,
				      "no such broker service", f->batch);
		return;
	}
	if (h->kind != WIRE_REQUEST)
		return; /* a SEND to a service: delivered, nothing to say */
	if (stats) {
		stats_reply(c, f);
	} else if (peers) {
		svc_peers(c, f);
	} else {
		struct frame_hdr r;

		reply_hdr(&r, h);
		conn_forward(c, f, &r, c);
	}
}

void svc_ping(struct conn *c, struct conn_frame *f)
{
	struct frame_hdr h;

	frame_init(&h, WIRE_PONG);
	h.id = f->h.id;
	h.has |= FH(WK_ID);
	conn_send_hdr(c, &h);
}
