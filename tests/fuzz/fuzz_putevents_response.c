/* fuzz_putevents_response.c: feed arbitrary PutEvents response bodies (first byte: entries sent) to the parser. */
#include "aws/eventbridge.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        EventBridgeEntryResult results[EVENTBRIDGE_MAX_ENTRIES];
        char *error = NULL;

        if (size < 1)
                return 0;
        size_t n_sent = data[0] % (EVENTBRIDGE_MAX_ENTRIES + 1); /* 0 is invalid on purpose */

        int r = eventbridge_parse_response((const char *) data + 1, size - 1, n_sent, results, &error);
        if (r >= 0) {
                for (size_t i = 0; i < n_sent; i++)
                        if (strlen(results[i].error_code) >= sizeof results[i].error_code ||
                            strlen(results[i].error_message) >= sizeof results[i].error_message ||
                            (results[i].status == EVENTBRIDGE_ENTRY_OK) != (results[i].error_code[0] == '\0'))
                                abort();
        } else if (!error)
                abort(); /* every failure explains itself */
        free(error);
        return 0;
}
