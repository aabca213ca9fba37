/* fuzz_aws_error.c: feed arbitrary AWS error responses (first byte: status; first line: the header) to the parser. */
#include "aws/awserror.h"
#include "aws/timestamp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_printable(const char *s) {
        for (; *s; s++)
                if (*s < 0x20 || *s > 0x7e)
                        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        AwsError e;
        usec_t t;

        if (size < 1)
                return 0;
        long status = 400 + data[0] % 200;
        data++, size--;

        /* The first line doubles as the x-amzn-ErrorType header and a Date header. */
        const uint8_t *nl = memchr(data, '\n', size);
        size_t header_len = nl ? (size_t) (nl - data) : 0;
        char *header = strndup((const char *) data, header_len);
        if (!header)
                return 0;
        const char *body = (const char *) data + (nl ? header_len + 1 : 0);
        size_t body_len = size - (size_t) (body - (const char *) data);

        aws_error_parse(status, header, body, body_len, &e);
        check_printable(e.code);
        check_printable(e.message);
        if (!*e.code || !aws_error_hint(&e))
                abort();

        aws_error_parse(status, NULL, body, body_len, &e);
        check_printable(e.message);

        if (http_date_parse(header, &t) >= 0 && t > 253402300800ULL * USEC_PER_SEC)
                abort();
        (void) iso8601_parse(header, &t);
        free(header);
        return 0;
}
