/*
 * monitor.c - see monitor.h. The filter grammar: terms separated by
 * spaces; a term is KEY=V1[,V2...] with KEY one of dir (in, out), kind
 * (frame kind names, any case), conn (decimal ids), name (names), topic
 * (patterns). A frame is selected when, for every key that appears, one
 * of its values matches; an empty filter selects everything. A name
 * matches when it is the frame's to, from or name, or is held by the
 * connection the frame came from or goes to; a topic pattern matches a
 * frame whose topic it matches (or, for SUBSCRIBE, equals).
 */
#include "monitor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "broker.h"
#include "log.h"
#include "mpw.h"
#include "policy.h"
#include "name.h"
#include "topic.h"

/* msgpack bin32 header: 0xc6 + 4-byte big-endian length. */
#define BIN32_HDR 5u

void monitor_init(struct monitor *m)
{
	TAILQ_INIT(&m->taps);
	m->ntaps = 0;
}

bool monitor_allowed(const struct conn *c)
{
	return c->cred.uid == 0 || c->cred.uid == geteuid() ||
	       policy_may_monitor(c->b->auth.policy,
				  c->auth.authenticated ? c->auth.pk : NULL,
				  c->cred.uid);
}

static struct mon_tap *find_tap(const struct conn *c, uint64_t id)
{
	struct mon_tap *t;

	TAILQ_FOREACH(t, &c->taps, by_conn)
		if (t->id == id)
			return t;
	return NULL;
}

bool monitor_find(const struct conn *c, uint64_t id)
{
	return find_tap(c, id) != NULL;
}

static void tap_remove(struct conn *c, struct mon_tap *t)
{
	struct monitor *m = &c->b->mon;

	TAILQ_REMOVE(&c->taps, t, by_conn);
	TAILQ_REMOVE(&m->taps, t, all);
	m->ntaps--;
	c->nsubs--;
	free(t);
}

bool monitor_untap(struct conn *c, uint64_t id)
{
	struct mon_tap *t = find_tap(c, id);

	if (!t)
		return false;
	tap_remove(c, t);
	return true;
}

void monitor_conn_gone(struct conn *c)
{
	struct mon_tap *t;

	while ((t = TAILQ_FIRST(&c->taps)))
		tap_remove(c, t);
}

static int kind_by_name(const char *s, size_t len)
{
	for (int k = 1; k < WIRE_KIND_MAX_; k++) {
		const char *n = frame_kind_name(k);

		if (strcmp(n, "UNKNOWN") != 0 && strlen(n) == len &&
		    strncasecmp(n, s, len) == 0)
			return k;
	}
	return -1;
}

int monitor_filter_parse(const char *text, size_t len, struct mon_filter *f,
			 const char **why)
{
	size_t i = 0;

	memset(f, 0, sizeof(*f));
	while (i < len) {
		size_t te, eq, v;

		if (text[i] == ' ') {
			i++;
			continue;
		}
		te = i;
		while (te < len && text[te] != ' ')
			te++;
		eq = i;
		while (eq < te && text[eq] != '=')
			eq++;
		if (eq == te || eq + 1 == te) {
			*why = "a filter term is KEY=VALUE[,VALUE...]";
			return WIRE_E_BAD_FILTER;
		}
		for (v = eq + 1; v < te;) {
			size_t ve = v, vl;
			const char *val = text + v;
			const char *key = text + i;
			size_t kl = eq - i;

			while (ve < te && text[ve] != ',')
				ve++;
			vl = ve - v;
			if (vl == 0) {
				*why = "empty value in a filter term";
				return WIRE_E_BAD_FILTER;
			}
			if (kl == 3 && memcmp(key, "dir", 3) == 0) {
				if (vl == 2 && memcmp(val, "in", 2) == 0)
					f->dirs |= 1u << WIRE_MONITOR_IN;
				else if (vl == 3 && memcmp(val, "out", 3) == 0)
					f->dirs |= 1u << WIRE_MONITOR_OUT;
				else {
					*why = "dir is in or out";
					return WIRE_E_BAD_FILTER;
				}
			} else if (kl == 4 && memcmp(key, "kind", 4) == 0) {
				int k = kind_by_name(val, vl);

				if (k < 0) {
					*why = "unknown frame kind in filter";
					return WIRE_E_BAD_FILTER;
				}
				f->kinds |= UINT64_C(1) << k;
			} else if (kl == 4 && memcmp(key, "conn", 4) == 0) {
				uint64_t id = 0;

				for (size_t k = 0; k < vl; k++) {
					if (val[k] < '0' || val[k] > '9' ||
					    id > (UINT64_MAX - 9) / 10) {
						*why = "conn is a decimal connection id";
						return WIRE_E_BAD_FILTER;
					}
					id = id * 10 + (uint64_t)(val[k] - '0');
				}
				if (f->nconn >= IPCHUB_MAX_FILTER_TERMS)
					goto too_many;
				f->conn[f->nconn++] = id;
			} else if (kl == 4 && memcmp(key, "name", 4) == 0) {
				if (name_check(val, vl) != WIRE_E_OK) {
					*why = "malformed name in filter";
					return WIRE_E_BAD_FILTER;
				}
				if (f->nname >= IPCHUB_MAX_FILTER_TERMS)
					goto too_many;
				f->name_off[f->nname] = (uint16_t)v;
				f->name_len[f->nname++] = (uint16_t)vl;
			} else if (kl == 5 && memcmp(key, "topic", 5) == 0) {
				if (topic_pattern_check(val, vl) != WIRE_E_OK) {
					*why = "malformed topic pattern in filter";
					return WIRE_E_BAD_FILTER;
				}
				if (f->ntopic >= IPCHUB_MAX_FILTER_TERMS)
					goto too_many;
				f->topic_off[f->ntopic] = (uint16_t)v;
				f->topic_len[f->ntopic++] = (uint16_t)vl;
			} else {
				*why = "unknown filter key (dir, kind, conn, name, topic)";
				return WIRE_E_BAD_FILTER;
			}
			v = ve + 1;
		}
		i = te;
	}
	return WIRE_E_OK;
too_many:
	*why = "too many values for one filter key";
	return WIRE_E_BAD_FILTER;
}

static bool str_is(const char *a, size_t alen, const char *b, size_t blen)
{
	return alen == blen && memcmp(a, b, alen) == 0;
}

static bool selects(const struct mon_tap *t, const struct conn *c, int dir,
		    const struct frame_hdr *h)
{
	const struct mon_filter *f = &t->f;
	bool ok;

	if (f->dirs && !(f->dirs & (1u << dir)))
		return false;
	if (f->kinds && !(f->kinds & (UINT64_C(1) << h->kind)))
		return false;
	if (f->nconn) {
		ok = false;
		for (unsigned i = 0; i < f->nconn && !ok; i++)
			ok = f->conn[i] == c->id;
		if (!ok)
			return false;
	}
	if (f->nname) {
		ok = false;
		for (unsigned i = 0; i < f->nname && !ok; i++) {
			const char *n = t->text + f->name_off[i];
			size_t nl = f->name_len[i];

			ok = ((h->has & FH(WK_TO)) && str_is(h->to, h->to_len, n, nl)) ||
			     ((h->has & FH(WK_FROM)) && str_is(h->from, h->from_len, n, nl)) ||
			     ((h->has & FH(WK_NAME)) && str_is(h->name, h->name_len, n, nl)) ||
			     names_lookup(&c->b->names, n, nl) == c;
		}
		if (!ok)
			return false;
	}
	if (f->ntopic) {
		if (!(h->has & FH(WK_TOPIC)))
			return false;
		ok = false;
		for (unsigned i = 0; i < f->ntopic && !ok; i++) {
			const char *p = t->text + f->topic_off[i];
			size_t pl = f->topic_len[i];

			ok = str_is(h->topic, h->topic_len, p, pl) ||
			     (topic_check(h->topic, h->topic_len) == WIRE_E_OK &&
			      topic_pattern_match(p, pl, h->topic, h->topic_len));
		}
		if (!ok)
			return false;
	}
	return true;
}

static void copy_to(struct mon_tap *t, const struct conn *c, int dir,
		    const void *hdr, size_t hlen, struct evbuffer *bsrc,
		    size_t boff, const void *body, size_t blen)
{
	struct conn *mc = t->c;
	struct broker *b = mc->b;
	struct frame_hdr h;
	uint8_t buf[FRAME_ENC_MAX], bin[BIN32_HDR];
	size_t n, inner = hlen + blen;
	bool cut = false;

	if (conn_over_hwm(mc)) {
		t->gap++;
		t->drops++;
		mc->drops++;
		b->st.drops++;
		return;
	}
	if (t->gap) {
		struct frame_hdr g;

		frame_init(&g, WIRE_GAP);
		g.sub = t->id;
		g.count = t->gap;
		g.has |= FH(WK_SUB) | FH(WK_COUNT);
		conn_send_hdr(mc, &g);
		t->gap = 0;
	}
	if (inner + BIN32_HDR + IPCHUB_MAX_HEADER > b->conf.max_frame) {
		cut = true;
		inner = hlen;
	}
	frame_init(&h, WIRE_MONITOR);
	h.sub = t->id;
	h.conn = c->id;
	h.event = (uint32_t)dir;
	h.has |= FH(WK_SUB) | FH(WK_CONN) | FH(WK_EVENT);
	if (cut) {
		h.count = hlen + blen;
		h.has |= FH(WK_COUNT);
	}
	n = frame_encode(&h, BIN32_HDR + inner, buf, sizeof(buf));
	bin[0] = 0xc6;
	frame_put_len(bin + 1, (uint32_t)inner);
	evbuffer_add(mc->out, buf, n);
	evbuffer_add(mc->out, bin, sizeof(bin));
	evbuffer_add(mc->out, hdr, hlen);
	if (!cut && blen) {
		if (bsrc) {
			void *tmp = malloc(blen);
			struct evbuffer_ptr pos;

			if (tmp) {
				evbuffer_ptr_set(bsrc, &pos, boff,
						 EVBUFFER_PTR_SET);
				evbuffer_copyout_from(bsrc, &pos, tmp, blen);
				evbuffer_add(mc->out, tmp, blen);
				free(tmp);
			} else {
				/* The copy's length is already on the wire:
				 * zeros keep the framing; the monitor sees a
				 * malformed body rather than a broken stream. */
				uint8_t zero[256] = {0};

				for (size_t k = 0; k < blen; k += sizeof(zero))
					evbuffer_add(mc->out, zero,
						     blen - k < sizeof(zero)
							     ? blen - k
							     : sizeof(zero));
			}
		} else {
			evbuffer_add(mc->out, body, blen);
		}
	}
	mc->msgs_out++;
	t->sent++;
	broker_want_flush(b, mc);
}

void monitor_tap(struct conn *c, int dir, const struct frame_hdr *h,
		 const void *hdr, size_t hlen, struct evbuffer *bsrc,
		 size_t boff, const void *body, size_t blen)
{
	struct monitor *m = &c->b->mon;
	struct mon_tap *t;

	if (!TAILQ_EMPTY(&c->taps))
		return;
	TAILQ_FOREACH(t, &m->taps, all) {
		if (t->c->state != CONN_READY || !selects(t, c, dir, h))
			continue;
		copy_to(t, c, dir, hdr, hlen, bsrc, boff, body, blen);
	}
}

void monitor_start(struct conn *c, struct conn_frame *f)
{
	struct broker *b = c->b;
	const struct frame_hdr *h = &f->h;
	struct mon_tap *t;
	struct frame_hdr ok;
	const char *why = NULL;
	char d[384];
	int rc;

	if (pubsub_id_in_use(c, h->id)) {
		conn_fail(c, WIRE_E_PROTOCOL, WIRE_MONITOR, h->id,
			  "id %llu already names a live subscription, watch or tap",
			  (unsigned long long)h->id);
		return;
	}
	if (!monitor_allowed(c)) {
		log_info(&b->log, "%s: MONITOR refused (not root, uid %lu or a monitor rule)",
			 conn_desc(c, d, sizeof(d)), (unsigned long)geteuid());
		conn_send_error(c, h->id, WIRE_E_NOT_AUTHORIZED, WIRE_MONITOR,
				NULL, 0, NULL, 0,
				"monitoring needs root, the broker's own user, or a "
				"'monitor' rule of the policy");
		return;
	}
	if (c->nsubs >= c->b->conf.max_subs) {
		conn_send_error(c, h->id, WIRE_E_LIMIT, WIRE_MONITOR, NULL, 0,
				NULL, 0,
				"too many subscriptions, watches and taps");
		return;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		conn_send_error(c, h->id, WIRE_E_INTERNAL, WIRE_MONITOR, NULL, 0,
				NULL, 0, "out of memory");
		return;
	}
	if (h->has & FH(WK_FILTER)) {
		memcpy(t->text, h->filter, h->filter_len);
		t->text[h->filter_len] = '\0';
	}
	rc = monitor_filter_parse(t->text, strlen(t->text), &t->f, &why);
	if (rc != WIRE_E_OK) {
		free(t);
		conn_send_error(c, h->id, rc, WIRE_MONITOR, NULL, 0, NULL, 0,
				why);
		return;
	}
	t->c = c;
	t->id = h->id;
	TAILQ_INSERT_TAIL(&c->taps, t, by_conn);
	TAILQ_INSERT_TAIL(&b->mon.taps, t, all);
	b->mon.ntaps++;
	c->nsubs++;
	log_info(&b->log, "%s: monitoring (filter \"%s\")",
		 conn_desc(c, d, sizeof(d)), t->text);
	frame_init(&ok, WIRE_OK);
	ok.id = h->id;
	ok.has |= FH(WK_ID);
	conn_send_hdr(c, &ok);
}
