/* fuzz_imds_credentials.c: feed arbitrary bytes to the IMDS document parsers (credentials, identity, role list). */
#include "aws/imds_doc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *body = (const char *) data;
        ImdsCredentials c = {};
        ImdsIdentity id;
        char *error = NULL, *role = NULL, *arn = NULL;

        if (imds_parse_credentials(body, size, &c, &error) >= 0) {
                /* What the signer relies on: non-empty header-safe strings. */
                if (!*c.access_key_id || !*c.secret_access_key || !*c.token || strpbrk(c.token, "\r\n "))
                        abort();
                imds_credentials_done(&c);
        }
        free(error);
        error = NULL;

        if (imds_parse_identity(body, size, &id, &error) >= 0) {
                if (imds_identity_instance_arn(&id, &arn) >= 0 && strpbrk(arn, "\r\n "))
                        abort();
                free(arn);
        }
        free(error);
        error = NULL;

        if (imds_parse_role_list(body, size, &role, &error) >= 0 && (!*role || strlen(role) > IMDS_ROLE_NAME_MAX))
                abort();
        free(role);
        free(error);
        return 0;
}
