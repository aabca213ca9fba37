/* sigv4.c: AWS Signature Version 4 canonical request, string to sign and signature. */
#include "aws/sigv4.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "codec.h"
#include "util.h"

#define SIGV4_ALGORITHM "AWS4-HMAC-SHA256"
#define SIGV4_TERMINATOR "aws4_request"
#define SIGV4_TOKEN_HEADER "x-amz-security-token"
#define SIGV4_SCOPE_PART_MAX 63      /* region and service; real ones are far shorter */
#define SIGV4_SECRET_MAX 256         /* real secret access keys are 40 characters */
#define SIGV4_HEX_SIZE (2 * SIGV4_KEY_SIZE + 1)

/* A growable string. Appends after a failed allocation are dropped and remembered, so
 * builders check once at the end instead of after every append. */
typedef struct SigV4Buf {
        char *data;
        size_t len, cap;
        bool oom;
} SigV4Buf;

typedef struct SigV4HeaderEntry {
        const char *name;
        const char *value;
        size_t index;   /* position in the request: keeps repeated headers in order */
} SigV4HeaderEntry;

typedef struct SigV4QueryParam {
        size_t key_off, key_len, value_off, value_len;  /* into the encoded buffer while it grows */
        const char *key, *value;                        /* set once it is complete */
} SigV4QueryParam;

struct SigV4Signer {
        EVP_MD *sha256;
        EVP_MD_CTX *md_ctx;
        EVP_MAC *hmac;
        EVP_MAC_CTX *mac_ctx;   /* key derivation */
        EVP_MAC_CTX *sign_ctx;  /* keyed with the cached signing key: re-init without a key
                                 * skips the key setup on every request */
        SigV4Buf scratch;       /* canonical request, reused between calls; wiped after each */

        bool key_valid;
        uint8_t key_secret_digest[SIGV4_KEY_SIZE];
        char key_date[9];
        char key_region[SIGV4_SCOPE_PART_MAX + 1];
        char key_service[SIGV4_SCOPE_PART_MAX + 1];
};

static bool buf_reserve(SigV4Buf *b, size_t extra) {
        if (b->oom)
                return false;
        if (extra < b->cap - b->len) /* keeps room for the NUL */
                return true;
        if (extra > SIZE_MAX / 2 - b->len) {
                b->oom = true;
                return false;
        }
        size_t cap = b->cap ? b->cap : 256;
        while (cap <= b->len + extra)
                cap *= 2;
        /* Not realloc(): the old buffer may hold a session token and must be wiped first. */
        char *p = malloc(cap);
        if (!p) {
                b->oom = true;
                return false;
        }
        if (b->data) {
                memcpy(p, b->data, b->len + 1);
                secure_zero(b->data, b->cap);
                free(b->data);
        }
        b->data = p;
        b->cap = cap;
        return true;
}

static void buf_put(SigV4Buf *b, const char *s, size_t n) {
        if (!buf_reserve(b, n))
                return;
        memcpy(b->data + b->len, s, n);
        b->len += n;
        b->data[b->len] = '\0';
}

static void buf_puts(SigV4Buf *b, const char *s) {
        buf_put(b, s, strlen(s));
}

static void buf_putc(SigV4Buf *b, char c) {
        buf_put(b, &c, 1);
}

/* Wipe (it may hold a session token) but keep the allocation for the next request. */
static void buf_reset(SigV4Buf *b) {
        if (b->data)
                secure_zero(b->data, b->len);
        b->len = 0;
        b->oom = false;
}

static void buf_done(SigV4Buf *b) {
        buf_reset(b);
        free(b->data);
        *b = (SigV4Buf) {};
}

static bool is_unreserved(unsigned char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
               c == '.' || c == '_' || c == '~';
}

static int hex_value(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;
}

static char ascii_lower(char c) {
        return c >= 'A' && c <= 'Z' ? (char) (c - 'A' + 'a') : c;
}

static bool is_space_or_tab(char c) {
        return c == ' ' || c == '\t';
}

/* SigV4 URI encoding: unreserved bytes as is, everything else %XX in upper case.
 * decode_percent: a valid %XX in the input is first decoded (query strings, so that an
 * already encoded parameter is not encoded twice); otherwise '%' itself is encoded (paths,
 * which SigV4 encodes twice for every service but S3). */
static void uri_encode(SigV4Buf *b, const char *s, size_t n, bool decode_percent) {
        static const char digits[] = "0123456789ABCDEF";
        if (!buf_reserve(b, 3 * n))
                return;
        char *out = b->data + b->len;
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char) s[i];
                if (decode_percent && c == '%' && i + 2 < n && hex_value(s[i + 1]) >= 0 &&
                    hex_value(s[i + 2]) >= 0) {
                        c = (unsigned char) (hex_value(s[i + 1]) << 4 | hex_value(s[i + 2]));
                        i += 2;
                }
                if (is_unreserved(c))
                        *out++ = (char) c;
                else {
                        *out++ = '%';
                        *out++ = digits[c >> 4];
                        *out++ = digits[c & 15];
                }
        }
        b->len = (size_t) (out - b->data);
        b->data[b->len] = '\0';
}

/* Remove "." and ".." segments and empty segments ("//"), then encode each segment. A trailing
 * slash survives when the path had one, as in botocore and the AWS test suite. */
static void append_canonical_path(SigV4Buf *b, const char *path) {
        size_t base = b->len;

        if (isempty(path))
                path = "/";

        for (const char *seg = path; *seg;) {
                size_t n = strcspn(seg, "/");
                if (n == 2 && seg[0] == '.' && seg[1] == '.') {
                        /* Drop the last output segment; encoded segments hold no '/'. */
                        while (b->len > base && b->data[b->len - 1] != '/')
                                b->len--;
                        if (b->len > base)
                                b->len--;
                        if (b->data)
                                b->data[b->len] = '\0';
                } else if (n > 0 && !(n == 1 && seg[0] == '.')) {
                        buf_putc(b, '/');
                        uri_encode(b, seg, n, false);
                }
                seg += n;
                if (*seg == '/')
                        seg++;
        }

        if (b->len == base || path[strlen(path) - 1] == '/')
                buf_putc(b, '/');
}

static int query_param_compare(const void *a, const void *b) {
        const SigV4QueryParam *x = a, *y = b;
        int r = memcmp(x->key, y->key, x->key_len < y->key_len ? x->key_len : y->key_len);
        if (r != 0)
                return r;
        if (x->key_len != y->key_len)
                return x->key_len < y->key_len ? -1 : 1;
        r = memcmp(x->value, y->value, x->value_len < y->value_len ? x->value_len : y->value_len);
        if (r != 0)
                return r;
        return x->value_len < y->value_len ? -1 : x->value_len > y->value_len;
}

/* Encode every key and value, sort by encoded key then value, join with '&'. */
static int append_canonical_query(SigV4Buf *b, const char *query) {
        if (isempty(query))
                return 0;

        size_t n_params = 1;
        for (const char *p = query; *p; p++)
                n_params += *p == '&';

        _cleanup_free_ SigV4QueryParam *params = calloc(n_params, sizeof *params);
        if (!params)
                return -ENOMEM;

        SigV4Buf enc = {};
        size_t n = 0;
        for (const char *p = query; *p;) {
                size_t len = strcspn(p, "&");
                if (len > 0) {
                        const char *eq = memchr(p, '=', len);
                        size_t key_len = eq ? (size_t) (eq - p) : len;
                        size_t start = enc.len;
                        uri_encode(&enc, p, key_len, true);
                        params[n].key_off = start;
                        params[n].key_len = enc.len - start;
                        start = enc.len;
                        if (eq)
                                uri_encode(&enc, eq + 1, len - key_len - 1, true);
                        params[n].value_off = start;
                        params[n].value_len = enc.len - start;
                        n++;
                }
                p += len;
                if (*p == '&')
                        p++;
        }
        if (enc.oom) {
                buf_done(&enc);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                params[i].key = enc.data + params[i].key_off;
                params[i].value = enc.data + params[i].value_off;
        }

        qsort(params, n, sizeof *params, query_param_compare);
        for (size_t i = 0; i < n; i++) {
                if (i > 0)
                        buf_putc(b, '&');
                buf_put(b, params[i].key, params[i].key_len);
                buf_putc(b, '=');
                buf_put(b, params[i].value, params[i].value_len);
        }
        buf_done(&enc);
        return 0;
}

static int header_name_compare(const char *a, const char *b) {
        for (;; a++, b++) {
                unsigned char x = (unsigned char) ascii_lower(*a), y = (unsigned char) ascii_lower(*b);
                if (x != y || x == '\0')
                        return (x > y) - (x < y);
        }
}

static int header_entry_compare(const void *a, const void *b) {
        const SigV4HeaderEntry *x = a, *y = b;
        int r = header_name_compare(x->name, y->name);
        if (r != 0)
                return r;
        return (x->index > y->index) - (x->index < y->index);
}

/* A name that could not be sent as an HTTP header or would make the canonical form ambiguous. */
static bool header_name_valid(const char *name) {
        if (isempty(name))
                return false;
        for (const char *p = name; *p; p++)
                if ((unsigned char) *p <= ' ' || *p == ':' || *p == 0x7f)
                        return false;
        return true;
}

static bool header_value_valid(const char *value) {
        return value && !strpbrk(value, "\r\n");
}

/* Trim, and collapse inner runs of spaces/tabs to one space (what AWS canonicalises to). */
static void append_header_value(SigV4Buf *b, const char *value) {
        bool pending_space = false;
        size_t n = strlen(value);
        if (!buf_reserve(b, n))
                return;
        char *start = b->data + b->len, *out = start;
        for (const char *p = value; *p; p++) {
                if (is_space_or_tab(*p)) {
                        pending_space = out > start;
                        continue;
                }
                if (pending_space)
                        *out++ = ' ';
                pending_space = false;
                *out++ = *p;
        }
        b->len = (size_t) (out - b->data);
        b->data[b->len] = '\0';
}

static void append_lower(SigV4Buf *b, const char *s) {
        size_t n = strlen(s);
        if (!buf_reserve(b, n))
                return;
        for (size_t i = 0; i < n; i++)
                b->data[b->len + i] = ascii_lower(s[i]);
        b->len += n;
        b->data[b->len] = '\0';
}

/* Canonical headers, a blank line, then the signed-header list, whose place in b is returned
 * so the Authorization value can reuse it. */
static int append_canonical_headers(SigV4Buf *b, const SigV4Request *req, const char *session_token,
                                    size_t *ret_signed_off, size_t *ret_signed_len) {
        bool add_token = !isempty(session_token);
        for (size_t i = 0; i < req->n_headers; i++) {
                if (!header_name_valid(req->headers[i].name) || !header_value_valid(req->headers[i].value))
                        return -EINVAL;
                if (header_name_compare(req->headers[i].name, SIGV4_TOKEN_HEADER) == 0)
                        add_token = false;
        }
        if (add_token && !header_value_valid(session_token))
                return -EINVAL;

        size_t n = req->n_headers + add_token;
        if (n == 0)
                return -EINVAL; /* SigV4 always signs at least host */
        _cleanup_free_ SigV4HeaderEntry *entries = calloc(n, sizeof *entries);
        if (!entries)
                return -ENOMEM;
        for (size_t i = 0; i < req->n_headers; i++)
                entries[i] = (SigV4HeaderEntry) {req->headers[i].name, req->headers[i].value, i};
        if (add_token)
                entries[n - 1] = (SigV4HeaderEntry) {SIGV4_TOKEN_HEADER, session_token, n - 1};
        qsort(entries, n, sizeof *entries, header_entry_compare);

        for (size_t i = 0; i < n; i++) {
                if (i > 0 && header_name_compare(entries[i - 1].name, entries[i].name) == 0)
                        buf_putc(b, ',');
                else {
                        if (i > 0)
                                buf_putc(b, '\n');
                        append_lower(b, entries[i].name);
                        buf_putc(b, ':');
                }
                append_header_value(b, entries[i].value);
        }
        buf_put(b, "\n\n", 2);

        size_t signed_off = b->len;
        for (size_t i = 0; i < n; i++) {
                if (i > 0 && header_name_compare(entries[i - 1].name, entries[i].name) == 0)
                        continue;
                if (i > 0)
                        buf_putc(b, ';');
                append_lower(b, entries[i].name);
        }
        *ret_signed_off = signed_off;
        *ret_signed_len = b->len - signed_off;
        return 0;
}

static int signer_sha256(SigV4Signer *s, const void *data, size_t len, uint8_t out[static SIGV4_KEY_SIZE]) {
        if (EVP_DigestInit_ex(s->md_ctx, s->sha256, NULL) != 1 ||
            EVP_DigestUpdate(s->md_ctx, data, len) != 1 ||
            EVP_DigestFinal_ex(s->md_ctx, out, NULL) != 1)
                return -EIO;
        return 0;
}

static int signer_hmac(SigV4Signer *s, const void *key, size_t key_len, const void *data, size_t len,
                       uint8_t out[static SIGV4_KEY_SIZE]) {
        size_t out_len = 0;
        if (EVP_MAC_init(s->mac_ctx, key, key_len, NULL) != 1 ||
            EVP_MAC_update(s->mac_ctx, data, len) != 1 ||
            EVP_MAC_final(s->mac_ctx, out, &out_len, SIGV4_KEY_SIZE) != 1 || out_len != SIGV4_KEY_SIZE)
                return -EIO;
        return 0;
}

/* HMAC with the signing key already set in s->sign_ctx by signer_key(). */
static int signer_sign(SigV4Signer *s, const void *data, size_t len, uint8_t out[static SIGV4_KEY_SIZE]) {
        size_t out_len = 0;
        if (EVP_MAC_init(s->sign_ctx, NULL, 0, NULL) != 1 || EVP_MAC_update(s->sign_ctx, data, len) != 1 ||
            EVP_MAC_final(s->sign_ctx, out, &out_len, SIGV4_KEY_SIZE) != 1 || out_len != SIGV4_KEY_SIZE)
                return -EIO;
        return 0;
}

/* Builds the canonical request into s->scratch (reset first). */
static int signer_canonical_request(SigV4Signer *s, const SigV4Request *req, const char *session_token,
                                    size_t *ret_signed_off, size_t *ret_signed_len) {
        SigV4Buf *b = &s->scratch;
        uint8_t digest[SIGV4_KEY_SIZE];
        char hex[SIGV4_HEX_SIZE];
        size_t signed_off, signed_len;
        int r;

        if (!req || isempty(req->method) || (!req->payload && req->payload_len > 0))
                return -EINVAL;
        if (strpbrk(req->method, " \t\r\n") || (req->path && strpbrk(req->path, "\r\n")) ||
            (req->query && strpbrk(req->query, "\r\n")))
                return -EINVAL;

        buf_reset(b);
        buf_puts(b, req->method);
        buf_putc(b, '\n');
        append_canonical_path(b, req->path);
        buf_putc(b, '\n');
        r = append_canonical_query(b, req->query);
        if (r < 0)
                return r;
        buf_putc(b, '\n');
        r = append_canonical_headers(b, req, session_token, &signed_off, &signed_len);
        if (r < 0)
                return r;
        r = signer_sha256(s, req->payload_len > 0 ? req->payload : "", req->payload_len, digest);
        if (r < 0)
                return r;
        codec_hex_encode(digest, sizeof digest, hex);
        buf_putc(b, '\n');
        buf_put(b, hex, SIGV4_HEX_SIZE - 1);
        if (b->oom)
                return -ENOMEM;

        *ret_signed_off = signed_off;
        *ret_signed_len = signed_len;
        return 0;
}

static bool scope_part_valid(const char *s) {
        if (isempty(s) || strlen(s) > SIGV4_SCOPE_PART_MAX)
                return false;
        for (const char *p = s; *p; p++)
                if ((unsigned char) *p <= ' ' || *p == '/' || *p == ',' || *p == 0x7f)
                        return false;
        return true;
}

static bool amz_date_valid(const char *d) {
        if (!d || strlen(d) != SIGV4_AMZ_DATE_SIZE - 1 || d[8] != 'T' || d[15] != 'Z')
                return false;
        for (size_t i = 0; i < 15; i++)
                if (i != 8 && (d[i] < '0' || d[i] > '9'))
                        return false;
        return true;
}

static bool scope_valid(const SigV4Scope *scope) {
        return scope && scope_part_valid(scope->region) && scope_part_valid(scope->service) &&
               amz_date_valid(scope->amz_date);
}

/* "AWS4-HMAC-SHA256\n<date>\n<date8>/<region>/<service>/aws4_request\n<hex sha256(creq)>" */
static int signer_string_to_sign(SigV4Signer *s, const SigV4Scope *scope, const char *creq, size_t creq_len,
                                 char *buf, size_t size) {
        uint8_t digest[SIGV4_KEY_SIZE];
        char hex[SIGV4_HEX_SIZE];
        int r = signer_sha256(s, creq, creq_len, digest);
        if (r < 0)
                return r;
        codec_hex_encode(digest, sizeof digest, hex);
        /* Plain copies rather than snprintf(): this runs for every request. */
        size_t region_len = strlen(scope->region), service_len = strlen(scope->service);
        const struct {
                const char *s;
                size_t n;
        } parts[] = {
                {SIGV4_ALGORITHM "\n", strlen(SIGV4_ALGORITHM) + 1},
                {scope->amz_date, SIGV4_AMZ_DATE_SIZE - 1},
                {"\n", 1},
                {scope->amz_date, 8},
                {"/", 1},
                {scope->region, region_len},
                {"/", 1},
                {scope->service, service_len},
                {"/" SIGV4_TERMINATOR "\n", strlen(SIGV4_TERMINATOR) + 2},
                {hex, SIGV4_HEX_SIZE - 1},
        };
        size_t len = 0;
        for (size_t i = 0; i < ELEMENTSOF(parts); i++) {
                if (parts[i].n >= size - len)
                        return -EINVAL;
                memcpy(buf + len, parts[i].s, parts[i].n);
                len += parts[i].n;
        }
        buf[len] = '\0';
        return (int) len;
}

/* Enough for the string to sign with region and service at SIGV4_SCOPE_PART_MAX. */
#define SIGV4_STS_SIZE 256

static int signer_derive_key(SigV4Signer *s, const char *secret, const char *date8, const char *region,
                             const char *service, uint8_t out[static SIGV4_KEY_SIZE]) {
        uint8_t k[SIGV4_KEY_SIZE];
        char first[4 + SIGV4_SECRET_MAX];
        size_t secret_len = strlen(secret);
        int r;

        if (secret_len == 0 || secret_len > SIGV4_SECRET_MAX || strlen(date8) < 8)
                return -EINVAL;
        memcpy(first, "AWS4", 4);
        memcpy(first + 4, secret, secret_len);

        r = signer_hmac(s, first, 4 + secret_len, date8, 8, k);
        if (r >= 0)
                r = signer_hmac(s, k, sizeof k, region, strlen(region), k);
        if (r >= 0)
                r = signer_hmac(s, k, sizeof k, service, strlen(service), k);
        if (r >= 0)
                r = signer_hmac(s, k, sizeof k, SIGV4_TERMINATOR, strlen(SIGV4_TERMINATOR), out);
        secure_zero(first, sizeof first);
        secure_zero(k, sizeof k);
        return r;
}

/* Key s->sign_ctx for this scope, unless the cached key already fits the secret and scope. */
static int signer_key(SigV4Signer *s, const char *secret, const SigV4Scope *scope) {
        uint8_t key[SIGV4_KEY_SIZE];
        uint8_t digest[SIGV4_KEY_SIZE];
        int r = signer_sha256(s, secret, strlen(secret), digest);
        if (r < 0)
                return r;
        if (s->key_valid && CRYPTO_memcmp(digest, s->key_secret_digest, sizeof digest) == 0 &&
            strncmp(s->key_date, scope->amz_date, 8) == 0 && strcmp(s->key_region, scope->region) == 0 &&
            strcmp(s->key_service, scope->service) == 0)
                return 0;

        s->key_valid = false;
        r = signer_derive_key(s, secret, scope->amz_date, scope->region, scope->service, key);
        if (r >= 0 && EVP_MAC_init(s->sign_ctx, key, sizeof key, NULL) != 1)
                r = -EIO;
        secure_zero(key, sizeof key);
        if (r < 0)
                return r;
        memcpy(s->key_secret_digest, digest, sizeof digest);
        memcpy(s->key_date, scope->amz_date, 8);
        s->key_date[8] = '\0';
        /* lengths checked by scope_valid() */
        bsprintf(s->key_region, "%s", scope->region);
        bsprintf(s->key_service, "%s", scope->service);
        s->key_valid = true;
        return 0;
}

int sigv4_signer_new(SigV4Signer **ret) {
        SigV4Signer *s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;

        OSSL_PARAM params[] = {
                OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *) "SHA256", 0),
                OSSL_PARAM_construct_end(),
        };
        s->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
        s->md_ctx = EVP_MD_CTX_new();
        s->hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
        s->mac_ctx = s->hmac ? EVP_MAC_CTX_new(s->hmac) : NULL;
        s->sign_ctx = s->hmac ? EVP_MAC_CTX_new(s->hmac) : NULL;
        if (!s->sha256 || !s->md_ctx || !s->mac_ctx || !s->sign_ctx ||
            EVP_MAC_CTX_set_params(s->mac_ctx, params) != 1 || EVP_MAC_CTX_set_params(s->sign_ctx, params) != 1) {
                sigv4_signer_free(s);
                return -EIO;
        }
        *ret = s;
        return 0;
}

SigV4Signer *sigv4_signer_free(SigV4Signer *s) {
        if (!s)
                return NULL;
        EVP_MAC_CTX_free(s->mac_ctx);
        EVP_MAC_CTX_free(s->sign_ctx); /* OpenSSL cleanses the key schedule */
        EVP_MAC_free(s->hmac);
        EVP_MD_CTX_free(s->md_ctx);
        EVP_MD_free(s->sha256);
        buf_done(&s->scratch);
        secure_zero(s, sizeof *s);
        free(s);
        return NULL;
}

static bool credentials_valid(const SigV4Credentials *creds) {
        if (!creds || isempty(creds->access_key_id) || isempty(creds->secret_access_key))
                return false;
        for (const char *p = creds->access_key_id; *p; p++)
                if ((unsigned char) *p <= ' ' || *p == '/' || *p == ',' || *p == 0x7f)
                        return false;
        return true;
}

int sigv4_signer_authorization(SigV4Signer *s, const SigV4Request *req, const SigV4Credentials *creds,
                               const SigV4Scope *scope, char **ret) {
        uint8_t signature[SIGV4_KEY_SIZE];
        char hex[SIGV4_HEX_SIZE], sts[SIGV4_STS_SIZE];
        size_t signed_off, signed_len;
        int r, sts_len;

        if (!s || !credentials_valid(creds) || !scope_valid(scope) || !ret)
                return -EINVAL;

        r = signer_canonical_request(s, req, creds->session_token, &signed_off, &signed_len);
        if (r >= 0)
                r = sts_len = signer_string_to_sign(s, scope, s->scratch.data, s->scratch.len, sts, sizeof sts);
        if (r >= 0)
                r = signer_key(s, creds->secret_access_key, scope);
        if (r >= 0)
                r = signer_sign(s, sts, (size_t) sts_len, signature);
        if (r < 0) {
                buf_reset(&s->scratch);
                return r;
        }
        codec_hex_encode(signature, sizeof signature, hex);

        /* Build the value after the canonical request in the scratch buffer, reserving room
         * for all of it at once: the signed-header list is copied from that same buffer,
         * which therefore must not move. */
        SigV4Buf *b = &s->scratch;
        size_t start = b->len;
        (void) buf_reserve(b, strlen(creds->access_key_id) + signed_len + 2 * SIGV4_SCOPE_PART_MAX + 160);
        buf_puts(b, SIGV4_ALGORITHM " Credential=");
        buf_puts(b, creds->access_key_id);
        buf_putc(b, '/');
        buf_put(b, scope->amz_date, 8);
        buf_putc(b, '/');
        buf_puts(b, scope->region);
        buf_putc(b, '/');
        buf_puts(b, scope->service);
        buf_puts(b, "/" SIGV4_TERMINATOR ", SignedHeaders=");
        buf_put(b, b->data + signed_off, signed_len);
        buf_puts(b, ", Signature=");
        buf_put(b, hex, SIGV4_HEX_SIZE - 1);
        char *auth = b->oom ? NULL : strndup(b->data + start, b->len - start);
        buf_reset(b);
        if (!auth)
                return -ENOMEM;
        *ret = auth;
        return 0;
}

int sigv4_authorization(const SigV4Request *req, const SigV4Credentials *creds, const SigV4Scope *scope,
                        char **ret) {
        _cleanup_(sigv4_signer_freep) SigV4Signer *s = NULL;
        int r = sigv4_signer_new(&s);
        if (r < 0)
                return r;
        return sigv4_signer_authorization(s, req, creds, scope, ret);
}

int sigv4_canonical_request(const SigV4Request *req, const char *session_token_to_add, char **ret) {
        _cleanup_(sigv4_signer_freep) SigV4Signer *s = NULL;
        size_t signed_off, signed_len;
        int r;

        if (!ret)
                return -EINVAL;
        r = sigv4_signer_new(&s);
        if (r < 0)
                return r;
        r = signer_canonical_request(s, req, session_token_to_add, &signed_off, &signed_len);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s->scratch.data);
        return 0;
}

int sigv4_string_to_sign(const SigV4Scope *scope, const char *canonical_request, char **ret) {
        _cleanup_(sigv4_signer_freep) SigV4Signer *s = NULL;
        char sts[SIGV4_STS_SIZE];
        int r;

        if (!scope_valid(scope) || !canonical_request || !ret)
                return -EINVAL;
        r = sigv4_signer_new(&s);
        if (r < 0)
                return r;
        r = signer_string_to_sign(s, scope, canonical_request, strlen(canonical_request), sts, sizeof sts);
        if (r < 0)
                return r;
        char *copy = strdup(sts);
        if (!copy)
                return -ENOMEM;
        *ret = copy;
        return 0;
}

int sigv4_derive_key(const char *secret_access_key, const char *date8, const char *region,
                     const char *service, uint8_t ret_key[static SIGV4_KEY_SIZE]) {
        _cleanup_(sigv4_signer_freep) SigV4Signer *s = NULL;
        uint8_t key[SIGV4_KEY_SIZE];
        int r;

        if (!secret_access_key || !date8 || !region || !service)
                return -EINVAL;
        r = sigv4_signer_new(&s);
        if (r < 0)
                return r;
        r = signer_derive_key(s, secret_access_key, date8, region, service, key);
        if (r < 0)
                return r;
        memcpy(ret_key, key, sizeof key);
        secure_zero(key, sizeof key);
        return 0;
}

int sigv4_format_amz_date(time_t t, char buf[static SIGV4_AMZ_DATE_SIZE]) {
        struct tm tm;
        if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999)
                return -ERANGE;
        if (strftime(buf, SIGV4_AMZ_DATE_SIZE, "%Y%m%dT%H%M%SZ", &tm) != SIGV4_AMZ_DATE_SIZE - 1)
                return -ERANGE;
        return 0;
}
