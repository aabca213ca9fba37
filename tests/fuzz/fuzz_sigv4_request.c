/* fuzz_sigv4_request.c: fuzz the SigV4 test-suite request parser and the signer behind it. */
#include "../lib/sigv4_req.h"
#include "aws/sigv4.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(sigv4_req_freep) SigV4Req *req = NULL;
        _cleanup_(sigv4_signer_freep) SigV4Signer *signer = NULL;
        _cleanup_free_ char *error = NULL, *creq = NULL, *sts = NULL, *authz = NULL, *again = NULL;

        if (size > 64 * 1024)
                return 0;
        if (sigv4_req_parse((const char *) data, size, &req, &error) < 0)
                return 0;

        /* Use the request's own date when it is one, so odd dates reach the validation too. */
        const char *amz_date = sigv4_req_header(req, "X-Amz-Date");
        const SigV4Scope scope = {"us-east-1", "service", amz_date ? amz_date : "20150830T123600Z"};
        const SigV4Credentials creds = {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                                        size % 2 ? "session-token" : NULL};

        int r = sigv4_canonical_request(&req->request, creds.session_token, &creq);
        if (r < 0)
                return 0;
        if (sigv4_string_to_sign(&scope, creq, &sts) < 0)
                return 0; /* only an invalid date can fail here */

        /* A request whose canonical form and string to sign exist must sign, and a reused
         * signer (cached key) must agree with a fresh one. */
        if (sigv4_authorization(&req->request, &creds, &scope, &authz) < 0 || sigv4_signer_new(&signer) < 0 ||
            sigv4_signer_authorization(signer, &req->request, &creds, &scope, &again) < 0 ||
            strcmp(authz, again) != 0)
                abort();
        free(again);
        again = NULL;
        if (sigv4_signer_authorization(signer, &req->request, &creds, &scope, &again) < 0 ||
            strcmp(authz, again) != 0)
                abort();
        return 0;
}
