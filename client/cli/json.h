/*
 * json.h - JSON <-> msgpack conversion for the ipchub CLI (internal).
 *
 * JSON to msgpack: integers -> int (shortest msgpack form; JSON integers
 * must fit int64, a jansson limit), reals -> float64, strings -> str
 * (embedded NUL allowed via \u0000), true/false/null, arrays, objects
 * with string keys -> maps. Two object shapes are reserved to express
 * what JSON lacks: {"$bin": "<base64>"} -> bin and
 * {"$ext": <int -128..127>, "$data": "<base64>"} -> ext. Base64 is the
 * standard alphabet with padding.
 *
 * msgpack to JSON: ints -> integers, except uint64 above INT64_MAX ->
 * real (precision is lost; JSON tools rarely keep such integers anyway);
 * float32/64 -> real (NaN and infinities have no JSON form: BAD_BODY);
 * str -> string (invalid UTF-8: BAD_BODY, never replacement garbage);
 * bin and ext -> the reserved shapes above; maps -> objects, where a key
 * that is not a string becomes its compact JSON text (1 -> "1",
 * [1,2] -> "[1,2]") and a later duplicate key replaces an earlier one.
 *
 * Errors: IPCHUB_E_INVALID (JSON input unusable), IPCHUB_E_BAD_BODY
 * (msgpack not representable as JSON), IPCHUB_E_NOMEM. On error a short
 * English explanation is written to err (if errcap > 0).
 */
#ifndef IPCHUB_CLI_JSON_H
#define IPCHUB_CLI_JSON_H

#include <stddef.h>

#include <jansson.h>
#include <msgpack.h>

/* Parse JSON text (any value at top level) and append its msgpack
 * encoding to pk. */
int cli_json_text_to_msgpack(const char *text, size_t len,
			     msgpack_packer *pk, char *err, size_t errcap);

/* Append the msgpack encoding of a JSON value to pk. */
int cli_json_to_msgpack(const json_t *j, msgpack_packer *pk, char *err,
			size_t errcap);

/* Convert an unpacked msgpack object into a new JSON value (*out, caller
 * owns one reference). The object must come from validated bytes (its
 * nesting is bounded). */
int cli_json_from_object(const msgpack_object *o, json_t **out, char *err,
			 size_t errcap);

/* Validate body bytes (exactly one msgpack value), unpack and convert.
 * A missing body (len 0) converts to JSON null. */
int cli_json_from_body(const void *body, size_t len, json_t **out,
		       char *err, size_t errcap);

/* Compact one-line JSON text of j (caller frees), or NULL on failure. */
char *cli_json_dump(const json_t *j);

#endif
