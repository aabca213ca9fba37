/* fuzz_sqs_receive.c: feed arbitrary ReceiveMessage response bodies to the SQS parser. */
#include "aws/sqs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        SqsMessage *messages = NULL;
        size_t n = 0;
        char *error = NULL;

        int r = sqs_parse_receive((const char *) data, size, &messages, &n, &error);
        if (r >= 0) {
                if ((n == 0) != (messages == NULL) || error)
                        abort();
                for (size_t i = 0; i < n; i++) {
                        const SqsMessage *m = &messages[i];
                        if (isempty(m->message_id) || isempty(m->receipt_handle) || !m->body ||
                            strlen(m->body) != m->body_len || (m->md5_ok && !m->md5_of_body))
                                abort();
                        for (size_t k = 0; k < m->n_attributes; k++)
                                if (isempty(m->attributes[k].name) || isempty(m->attributes[k].data_type))
                                        abort();
                }
        } else if (!error && r != -ENOMEM)
                abort(); /* every failure explains itself */
        sqs_messages_free(messages, n);
        free(error);
        return 0;
}
