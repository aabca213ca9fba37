/* codec.h: helpers the pure parsers and encoders share: error texts, whole-document JSON, safe log copies, hex digests. */
#pragma once

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "util.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON *, cJSON_Delete);
#define _cleanup_cjson_ _cleanup_(cJSON_Deletep)

/* Delete a parse tree whose strings may hold secrets or message bodies, wiping every
 * string first. Accepts NULL. */
void codec_json_wipe_and_delete(cJSON *root);
static inline void codec_json_wipe_and_deletep(cJSON **p) {
        codec_json_wipe_and_delete(*p);
}

/* Store a newly allocated message in *ret_error (when ret_error is not NULL; the caller
 * frees it; left NULL if memory runs out) and return error, so that a parser can say
 * "return codec_error(ret_error, -EBADMSG, "...")". */
int codec_error(char **ret_error, int error, const char *fmt, ...) _printf_(3, 4);

/* Parse data[0..len) as exactly one JSON document: trailing bytes other than whitespace,
 * embedded NULs and empty input are errors (-EBADMSG). data need not be NUL-terminated.
 * On success *ret is a new tree the caller deletes. */
int codec_parse_json(const char *data, size_t len, cJSON **ret);

/* Copy src[0..len) into dst[size] for logging: control bytes, DEL, non-ASCII bytes and
 * backslashes are escaped (\xNN, \\), so the copy is printable ASCII on one line; text
 * that does not fit is cut and ends in "...". dst is always NUL-terminated (size > 0). */
void codec_escape_copy(char *dst, size_t size, const char *src, size_t len);

/* data[0..len) as lowercase hex into ret, which holds 2 * len + 1 bytes (NUL-terminated). */
void codec_hex_encode(const unsigned char *data, size_t len, char *ret);

/* The lowercase hex digest by type (EVP_sha256(), EVP_md5(), ...) of data[0..len) into
 * ret[size]: -ENOBUFS if its 2 digits a byte and the NUL do not fit, -EIO if libcrypto
 * fails. ret is written only on success. */
int codec_digest_hex(const EVP_MD *type, const void *data, size_t len, char *ret, size_t size);

/* Whether s[0..len) is well-formed UTF-8 (no overlongs, surrogates or values past U+10FFFF). */
bool codec_utf8_is_valid(const char *s, size_t len);
