/* codec.c: helpers the pure parsers and encoders share: error texts, whole-document JSON, safe log copies, hex digests. */
#include "codec.h"

#include <stdarg.h>

int codec_error(char **ret_error, int error, const char *fmt, ...) {
        if (ret_error) {
                va_list ap;
                char *s = NULL;

                va_start(ap, fmt);
                int n = vsnprintf(NULL, 0, fmt, ap);
                va_end(ap);
                if (n >= 0)
                        s = malloc((size_t) n + 1);
                if (s) {
                        va_start(ap, fmt);
                        (void) vsnprintf(s, (size_t) n + 1, fmt, ap);
                        va_end(ap);
                }
                *ret_error = s;
        }
        return error;
}

static bool is_json_whitespace(char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int codec_parse_json(const char *data, size_t len, cJSON **ret) {
        const char *end = NULL;

        if (!data || len == 0)
                return -EBADMSG;

        /* cJSON's own "require NUL termination" check reads past len, so check the tail here. */
        cJSON *root = cJSON_ParseWithLengthOpts(data, len, &end, false);
        if (!root)
                return -EBADMSG;
        for (const char *p = end; p < data + len; p++)
                if (!is_json_whitespace(*p)) {
                        cJSON_Delete(root);
                        return -EBADMSG;
                }

        *ret = root;
        return 0;
}

void codec_hex_encode(const unsigned char *data, size_t len, char *ret) {
        static const char digits[] = "0123456789abcdef";

        for (size_t i = 0; i < len; i++) {
                ret[2 * i] = digits[data[i] >> 4];
                ret[2 * i + 1] = digits[data[i] & 15];
        }
        ret[2 * len] = '\0';
}

int codec_digest_hex(const EVP_MD *type, const void *data, size_t len, char *ret, size_t size) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned md_len = 0;

        if (EVP_Digest(data, len, md, &md_len, type, NULL) != 1)
                return -EIO;
        if (size < 2 * (size_t) md_len + 1)
                return -ENOBUFS;
        codec_hex_encode(md, md_len, ret);
        return 0;
}

void codec_escape_copy(char *dst, size_t size, const char *src, size_t len) {
        static const char hex[] = "0123456789abcdef";
        size_t n = 0;

        if (size == 0)
                return;

        for (size_t i = 0; src && i < len; i++) {
                unsigned char c = (unsigned char) src[i];
                char esc[4];
                size_t k;

                if (c == '\\') {
                        esc[0] = esc[1] = '\\';
                        k = 2;
                } else if (c < 0x20 || c >= 0x7f) {
                        esc[0] = '\\';
                        esc[1] = 'x';
                        esc[2] = hex[c >> 4];
                        esc[3] = hex[c & 0xf];
                        k = 4;
                } else {
                        esc[0] = (char) c;
                        k = 1;
                }

                if (n + k >= size) {
                        /* Mark the cut so a reader knows the text goes on. */
                        if (size >= 4) {
                                n = n < size - 4 ? n : size - 4;
                                memcpy(dst + n, "...", 3);
                                n += 3;
                        }
                        break;
                }
                memcpy(dst + n, esc, k);
                n += k;
        }
        dst[n] = '\0';
}

bool codec_utf8_is_valid(const char *s, size_t len) {
        const unsigned char *p = (const unsigned char *) s;
        size_t i = 0;

        while (i < len) {
                unsigned char c = p[i];
                size_t n;
                uint32_t cp, min;

                if (c < 0x80) {
                        i++;
                        continue;
                } else if ((c & 0xe0) == 0xc0) {
                        n = 1, cp = c & 0x1f, min = 0x80;
                } else if ((c & 0xf0) == 0xe0) {
                        n = 2, cp = c & 0x0f, min = 0x800;
                } else if ((c & 0xf8) == 0xf0) {
                        n = 3, cp = c & 0x07, min = 0x10000;
                } else
                        return false;

                if (len - i - 1 < n)
                        return false;
                for (size_t k = 1; k <= n; k++) {
                        if ((p[i + k] & 0xc0) != 0x80)
                                return false;
                        cp = (cp << 6) | (p[i + k] & 0x3f);
                }
                if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                        return false;
                i += n + 1;
        }
        return true;
}

static void json_wipe_strings(cJSON *item) {
        for (; item; item = item->next) {
                if (item->valuestring)
                        secure_zero(item->valuestring, strlen(item->valuestring));
                json_wipe_strings(item->child);
        }
}

void codec_json_wipe_and_delete(cJSON *root) {
        if (root) {
                json_wipe_strings(root);
                cJSON_Delete(root);
        }
}
