/*
 * json.c - JSON <-> msgpack conversion for the CLI (see json.h for the
 * mapping).
 *
 * Model: both directions are recursive walks over trees whose depth is
 * already bounded by the parser that built them (jansson caps JSON nesting
 * at 2048; msgpack bodies are validated at most 32 deep before msgpack-c
 * unpacks them), so recursion here is safe. Nothing is retained between
 * calls: JSON values returned belong to the caller, msgpack output goes
 * into the caller's packer. Base64 uses libsodium's codec.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ipchub.h"
#include "json.h"

#define B64_VARIANT sodium_base64_VARIANT_ORIGINAL

static int fail(int code, char *err, size_t errcap, const char *fmt, ...)
{
	va_list ap;

	if (err && errcap > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errcap, fmt, ap);
		va_end(ap);
	}
	return code;
}

#define NOMEM() fail(IPCHUB_E_NOMEM, err, errcap, "out of memory")

/* ---- JSON -> msgpack ------------------------------------------------ */

/* Decode base64 text into a new buffer (*out, caller frees). */
static int b64_decode(const char *s, size_t n, unsigned char **out,
		      size_t *outlen)
{
	unsigned char *buf = malloc(n / 4 * 3 + 3);
	const char *end = NULL;
	size_t len = 0;

	if (!buf)
		return IPCHUB_E_NOMEM;
	if (sodium_base642bin(buf, n / 4 * 3 + 3, s, n, NULL, &len, &end,
			      B64_VARIANT) != 0 ||
	    end != s + n) {
		free(buf);
		return IPCHUB_E_INVALID;
	}
	*out = buf;
	*outlen = len;
	return IPCHUB_OK;
}

static int pack_bytes(msgpack_packer *pk, const json_t *data, bool is_ext,
		      int8_t type, char *err, size_t errcap)
{
	unsigned char *bytes = NULL;
	size_t n = 0;
	int rc = b64_decode(json_string_value(data), json_string_length(data),
			    &bytes, &n);

	if (rc == IPCHUB_E_NOMEM)
		return NOMEM();
	if (rc)
		return fail(rc, err, errcap, "invalid base64 in %s",
			    is_ext ? "\"$data\"" : "\"$bin\"");
	if (is_ext)
		rc = msgpack_pack_ext(pk, n, type) ||
		     msgpack_pack_ext_body(pk, bytes, n);
	else
		rc = msgpack_pack_bin(pk, n) ||
		     msgpack_pack_bin_body(pk, bytes, n);
	free(bytes);
	return rc ? NOMEM() : IPCHUB_OK;
}

/* The reserved object shapes: {"$bin": s} and {"$ext": i, "$data": s}.
 * Returns 1 if j has one of them and was packed (or failed: *rc). */
static int pack_special(const json_t *j, msgpack_packer *pk, int *rc,
			char *err, size_t errcap)
{
	const json_t *bin = json_object_get(j, "$bin");
	const json_t *ext = json_object_get(j, "$ext");
	const json_t *data = json_object_get(j, "$data");

	if (json_object_size(j) == 1 && json_is_string(bin)) {
		*rc = pack_bytes(pk, bin, false, 0, err, errcap);
		return 1;
	}
	if (json_object_size(j) == 2 && json_is_integer(ext) &&
	    json_is_string(data)) {
		json_int_t t = json_integer_value(ext);

		if (t < INT8_MIN || t > INT8_MAX)
			*rc = fail(IPCHUB_E_INVALID, err, errcap,
				   "\"$ext\" type %" JSON_INTEGER_FORMAT
				   " is outside -128..127", t);
		else
			*rc = pack_bytes(pk, data, true, (int8_t)t, err, errcap);
		return 1;
	}
	return 0;
}

int cli_json_to_msgpack(const json_t *j, msgpack_packer *pk, char *err,
			size_t errcap)
{
	int rc = 0;

	switch (json_typeof(j)) {
	case JSON_NULL:
		rc = msgpack_pack_nil(pk);
		break;
	case JSON_TRUE:
		rc = msgpack_pack_true(pk);
		break;
	case JSON_FALSE:
		rc = msgpack_pack_false(pk);
		break;
	case JSON_INTEGER:
		rc = msgpack_pack_int64(pk, (int64_t)json_integer_value(j));
		break;
	case JSON_REAL:
		rc = msgpack_pack_double(pk, json_real_value(j));
		break;
	case JSON_STRING: {
		size_t n = json_string_length(j);

		rc = msgpack_pack_str(pk, n) ||
		     msgpack_pack_str_body(pk, json_string_value(j), n);
		break;
	}
	case JSON_ARRAY: {
		size_t i, n = json_array_size(j);

		if (msgpack_pack_array(pk, n))
			return NOMEM();
		for (i = 0; i < n; i++) {
			int r = cli_json_to_msgpack(json_array_get(j, i), pk,
						    err, errcap);
			if (r)
				return r;
		}
		break;
	}
	case JSON_OBJECT: {
		const char *key;
		size_t klen;
		json_t *v;
		int r;

		if (pack_special(j, pk, &r, err, errcap))
			return r;
		if (msgpack_pack_map(pk, json_object_size(j)))
			return NOMEM();
		/* json_object_keylen_foreach takes a non-const object. */
		json_object_keylen_foreach((json_t *)j, key, klen, v) {
			if (msgpack_pack_str(pk, klen) ||
			    msgpack_pack_str_body(pk, key, klen))
				return NOMEM();
			r = cli_json_to_msgpack(v, pk, err, errcap);
			if (r)
				return r;
		}
		break;
	}
	}
	return rc ? NOMEM() : IPCHUB_OK;
}

int cli_json_text_to_msgpack(const char *text, size_t len,
			     msgpack_packer *pk, char *err, size_t errcap)
{
	json_error_t je;
	json_t *j = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
	int rc;

	if (!j)
		return fail(IPCHUB_E_INVALID, err, errcap,
			    "invalid JSON: %s (at position %d)", je.text,
			    je.position);
	rc = cli_json_to_msgpack(j, pk, err, errcap);
	json_decref(j);
	return rc;
}

/* ---- msgpack -> JSON ------------------------------------------------ */

static json_t *b64_string(const void *p, size_t n)
{
	static const unsigned char none[1];
	size_t cap = sodium_base64_encoded_len(n, B64_VARIANT);
	char *s = malloc(cap);
	json_t *j;

	if (!s)
		return NULL;
	sodium_bin2base64(s, cap, n ? p : none, n, B64_VARIANT);
	j = json_string(s); /* base64 is ASCII */
	free(s);
	return j;
}

static int from_bytes(const msgpack_object *o, json_t **out, char *err,
		      size_t errcap)
{
	bool is_ext = o->type == MSGPACK_OBJECT_EXT;
	const void *p = is_ext ? (const void *)o->via.ext.ptr
			       : (const void *)o->via.bin.ptr;
	size_t n = is_ext ? o->via.ext.size : o->via.bin.size;
	json_t *obj = json_object();
	json_t *data = b64_string(p, n);

	if (!obj || !data) {
		json_decref(obj);
		json_decref(data);
		return NOMEM();
	}
	if (is_ext && json_object_set_new(obj, "$ext",
					  json_integer(o->via.ext.type))) {
		json_decref(data);
		json_decref(obj);
		return NOMEM();
	}
	/* json_object_set_new consumes data even when it fails. */
	if (json_object_set_new(obj, is_ext ? "$data" : "$bin", data)) {
		json_decref(obj);
		return NOMEM();
	}
	*out = obj;
	return IPCHUB_OK;
}

static int from_map(const msgpack_object *o, json_t **out, char *err,
		    size_t errcap)
{
	json_t *obj = json_object();
	uint32_t i;

	if (!obj)
		return NOMEM();
	for (i = 0; i < o->via.map.size; i++) {
		const msgpack_object_kv *kv = &o->via.map.ptr[i];
		json_t *v = NULL;
		int rc = cli_json_from_object(&kv->val, &v, err, errcap);

		if (rc) {
			json_decref(obj);
			return rc;
		}
		if (kv->key.type == MSGPACK_OBJECT_STR) {
			const char *k = kv->key.via.str.size
						? kv->key.via.str.ptr : "";

			if (json_object_setn_new(obj, k, kv->key.via.str.size,
						 v)) {
				json_decref(obj);
				/* jansson refuses invalid UTF-8 keys. */
				return fail(IPCHUB_E_BAD_BODY, err, errcap,
					    "map key is not valid UTF-8");
			}
		} else {
			json_t *k = NULL;
			char *ktext;

			rc = cli_json_from_object(&kv->key, &k, err, errcap);
			if (rc) {
				json_decref(v);
				json_decref(obj);
				return rc;
			}
			ktext = cli_json_dump(k);
			json_decref(k);
			if (!ktext || json_object_set_new(obj, ktext, v)) {
				free(ktext);
				json_decref(obj);
				return NOMEM();
			}
			free(ktext);
		}
	}
	*out = obj;
	return IPCHUB_OK;
}

int cli_json_from_object(const msgpack_object *o, json_t **out, char *err,
			 size_t errcap)
{
	json_t *j = NULL;

	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		j = json_null();
		break;
	case MSGPACK_OBJECT_BOOLEAN:
		j = json_boolean(o->via.boolean);
		break;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		if (o->via.u64 > (uint64_t)INT64_MAX)
			j = json_real((double)o->via.u64);
		else
			j = json_integer((json_int_t)o->via.u64);
		break;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		j = json_integer((json_int_t)o->via.i64);
		break;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		j = json_real(o->via.f64);
		if (!j)
			return fail(IPCHUB_E_BAD_BODY, err, errcap,
				    "NaN or infinity has no JSON form");
		break;
	case MSGPACK_OBJECT_STR:
		j = json_stringn(o->via.str.size ? o->via.str.ptr : "",
				 o->via.str.size);
		if (!j)
			return fail(IPCHUB_E_BAD_BODY, err, errcap,
				    "string is not valid UTF-8");
		break;
	case MSGPACK_OBJECT_BIN:
	case MSGPACK_OBJECT_EXT:
		return from_bytes(o, out, err, errcap);
	case MSGPACK_OBJECT_ARRAY: {
		uint32_t i;

		j = json_array();
		if (!j)
			return NOMEM();
		for (i = 0; i < o->via.array.size; i++) {
			json_t *e = NULL;
			int rc = cli_json_from_object(&o->via.array.ptr[i], &e,
						      err, errcap);

			if (rc) {
				json_decref(j);
				return rc;
			}
			if (json_array_append_new(j, e)) {
				json_decref(j);
				return NOMEM();
			}
		}
		break;
	}
	case MSGPACK_OBJECT_MAP:
		return from_map(o, out, err, errcap);
	default:
		return fail(IPCHUB_E_BAD_BODY, err, errcap,
			    "unknown msgpack type %d", (int)o->type);
	}
	if (!j)
		return NOMEM();
	*out = j;
	return IPCHUB_OK;
}

int cli_json_from_body(const void *body, size_t len, json_t **out,
		       char *err, size_t errcap)
{
	msgpack_unpacked u;
	int rc;

	if (len == 0) {
		*out = json_null();
		return IPCHUB_OK;
	}
	msgpack_unpacked_init(&u);
	rc = ipchub_body_unpack(body, len, &u);
	if (rc == IPCHUB_OK)
		rc = cli_json_from_object(&u.data, out, err, errcap);
	else if (rc == IPCHUB_E_NOMEM)
		rc = NOMEM();
	else
		rc = fail(IPCHUB_E_BAD_BODY, err, errcap,
			  "body is not exactly one msgpack value");
	msgpack_unpacked_destroy(&u);
	return rc;
}

char *cli_json_dump(const json_t *j)
{
	return json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
}
