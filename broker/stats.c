/*
 * stats.c - see stats.h. The reply is encoded with mpw into a buffer of
 * max_body bytes: first the totals (fixed size), then the connection
 * array, whose header is written as array32 at a reserved place and
 * patched when the count is known. Each connection entry is encoded into
 * a scratch buffer sized for its worst case first, so a connection that
 * does not fit is left out whole.
 */
#include "stats.h"

#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "mpw.h"
#include "pubsub.h"

/* Worst-case encoded size of one subscription entry: fixmap + 6 keys
 * (<= 10 bytes each) + pattern (str8) + policy name + 4 uint64. */
#define STATS_SUB_MAX (1 + 6 * 10 + 2 + IPCHUB_MAX_NAME + 12 + 4 * 9)
/* ... and of a connection entry without its names and subscriptions. */
#define STATS_CONN_FIXED (1 + 14 * 16 + 11 * 9 + 2 + IPCHUB_MAX_AGENT + 10)
/* The totals map with the errors map, without the conns array. */
#define STATS_TOTALS_MAX (1 + 16 * 20 + 13 * 9 + 1 + WIRE_E_CODE_MAX_ * 30)

void stats_init(struct stats *s, uint64_t now_ms)
{
	memset(s, 0, sizeof(*s));
	s->started_ms = now_ms;
}

void stats_conn_closed(struct stats *s, const struct conn *c)
{
	s->closed_msgs_in += c->msgs_in;
	s->closed_bytes_in += c->bytes_in;
	s->closed_msgs_out += c->msgs_out;
	s->closed_bytes_out += c->bytes_out;
}

static void kv_uint(struct mpw *w, const char *k, uint64_t v)
{
	mpw_str(w, k, strlen(k));
	mpw_uint(w, v);
}

static size_t conn_entry_max(const struct conn *c)
{
	return STATS_CONN_FIXED + (size_t)c->names.n * (3 + IPCHUB_MAX_NAME) +
	       (size_t)c->nsubs * STATS_SUB_MAX;
}

static void conn_entry(struct mpw *w, struct broker *b, const struct conn *c)
{
	const struct ps_sub *s;
	uint32_t nsubs = 0;

	TAILQ_FOREACH(s, &c->subs, link)
		nsubs++;
	mpw_map(w, 14);
	kv_uint(w, "id", c->id);
	mpw_str(w, "names", 5);
	mpw_array(w, c->names.n);
	for (uint32_t i = 0; i < c->names.n; i++)
		mpw_str(w, c->names.v[i]->name, c->names.v[i]->len);
	kv_uint(w, "uid", (uint64_t)c->cred.uid);
	kv_uint(w, "pid", (uint64_t)(c->cred.pid > 0 ? c->cred.pid : 0));
	mpw_str(w, "agent", 5);
	mpw_str(w, c->agent, strlen(c->agent));
	kv_uint(w, "age_ms", broker_now_ms(b) - c->connected_ms);
	kv_uint(w, "queued_bytes",
		evbuffer_get_length(c->out) + pubsub_queued_bytes(c));
	kv_uint(w, "messages_in", c->msgs_in);
	kv_uint(w, "messages_out", c->msgs_out);
	kv_uint(w, "bytes_in", c->bytes_in);
	kv_uint(w, "bytes_out", c->bytes_out);
	kv_uint(w, "drops", c->drops);
	kv_uint(w, "watches_and_taps", c->nsubs - nsubs);
	mpw_str(w, "subscriptions", 13);
	mpw_array(w, nsubs);
	TAILQ_FOREACH(s, &c->subs, link) {
		const char *pn = pubsub_policy_name(s->policy);

		mpw_map(w, 6);
		kv_uint(w, "id", s->id);
		mpw_str(w, "pattern", 7);
		mpw_str(w, s->pat, s->pat_len);
		mpw_str(w, "policy", 6);
		mpw_str(w, pn, strlen(pn));
		kv_uint(w, "queued", s->qn);
		kv_uint(w, "delivered", s->delivered);
		kv_uint(w, "drops", s->drops);
	}
}

uint8_t *stats_body(struct broker *b, size_t max_body, size_t *len)
{
	const struct stats *st = &b->st;
	uint64_t min = st->closed_msgs_in, mout = st->closed_msgs_out;
	uint64_t bin = st->closed_bytes_in, bout = st->closed_bytes_out;
	uint32_t nerr = 0, cnt = 0;
	size_t cap = max_body, at, scratch_cap = 0;
	uint8_t *buf, *scratch = NULL;
	bool truncated = false;
	struct conn *c;
	struct mpw w;

	TAILQ_FOREACH(c, &b->all, link) {
		min += c->msgs_in;
		mout += c->msgs_out;
		bin += c->bytes_in;
		bout += c->bytes_out;
	}
	for (int k = 1; k < WIRE_E_CODE_MAX_; k++)
		nerr += st->errors[k] != 0;
	if (cap < STATS_TOTALS_MAX + 16)
		return NULL;
	buf = malloc(cap);
	if (!buf)
		return NULL;
	mpw_init(&w, buf, cap);
	mpw_map(&w, 21);
	kv_uint(&w, "uptime_ms", broker_now_ms(b) - st->started_ms);
	kv_uint(&w, "connections", b->nconns);
	kv_uint(&w, "connections_total", st->conns_total);
	kv_uint(&w, "names", names_count(&b->names));
	kv_uint(&w, "subscriptions", b->ps.nsubs);
	kv_uint(&w, "messages_routed", st->routed_msgs);
	kv_uint(&w, "bytes_routed", st->routed_bytes);
	kv_uint(&w, "batches_routed", st->routed_batches);
	kv_uint(&w, "bytes_copied", st->copied_bytes);
	kv_uint(&w, "messages_in", min);
	kv_uint(&w, "messages_out", mout);
	kv_uint(&w, "bytes_in", bin);
	kv_uint(&w, "bytes_out", bout);
	kv_uint(&w, "drops", st->drops);
	kv_uint(&w, "fds_in_flight", st->fds_in_flight);
	kv_uint(&w, "fds_passed", st->fds_passed);
	kv_uint(&w, "fds_refused", st->fds_refused);
	kv_uint(&w, "memfd_inlined", st->memfd_inlined);
	mpw_str(&w, "errors", 6);
	mpw_map(&w, nerr);
	for (int k = 1; k < WIRE_E_CODE_MAX_; k++) {
		if (!st->errors[k])
			continue;
		mpw_str(&w, frame_code_name(k), strlen(frame_code_name(k)));
		mpw_uint(&w, st->errors[k]);
	}
	mpw_str(&w, "conns", 5);
	at = w.len;
	mpw_raw(&w, "\xdd\0\0\0\0", 5); /* array32, patched below */
	TAILQ_FOREACH(c, &b->all, link) {
		size_t need = conn_entry_max(c);
		struct mpw e;

		if (c->state != CONN_READY)
			continue;
		if (need > scratch_cap) {
			uint8_t *p = realloc(scratch, need);

			if (!p) {
				truncated = true;
				break;
			}
			scratch = p;
			scratch_cap = need;
		}
		mpw_init(&e, scratch, scratch_cap);
		conn_entry(&e, b, c);
		/* Keep room for the final "truncated" entry. */
		if (e.overflow || w.len + e.len + 16 > cap) {
			truncated = true;
			break;
		}
		mpw_raw(&w, scratch, e.len);
		cnt++;
	}
	free(scratch);
	frame_put_len(buf + at + 1, cnt);
	mpw_str(&w, "truncated", 9);
	mpw_bool(&w, truncated);
	if (w.overflow) {
		free(buf);
		return NULL;
	}
	*len = w.len;
	return buf;
}

void stats_reply(struct conn *c, struct conn_frame *f)
{
	struct broker *b = c->b;
	struct frame_hdr r;
	uint8_t hbuf[FRAME_ENC_MAX];
	size_t blen, hlen;
	uint8_t *body = stats_body(b, b->conf.max_frame - IPCHUB_MAX_HEADER,
				   &blen);

	if (!body) {
		conn_send_error(c, f->h.id, WIRE_E_INTERNAL, WIRE_REQUEST,
				f->h.to, f->h.to_len, NULL, 0, "out of memory");
		return;
	}
	frame_init(&r, WIRE_REPLY);
	r.id = f->h.id;
	r.from_id = 0;
	r.has |= FH(WK_ID) | FH(WK_FROM_ID);
	frame_set_str(&r, WK_FROM, f->h.to, f->h.to_len);
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
