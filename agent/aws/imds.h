/* imds.h: the EC2 instance metadata service, IMDSv2 only (session token flow). */
#pragma once

#include "io/http.h"

typedef struct Imds Imds;

/* error: 0 and the body (borrowed until return), or a negative errno: -ETIMEDOUT,
 * -ECONNREFUSED, ..., -ENOENT for a 404, -EACCES when IMDS refused our token twice,
 * -EBADMSG for any other status. */
typedef void (*imds_fetch_fn)(int error, const char *body, size_t len, void *userdata);

/* endpoint: "http://169.254.169.254" (no trailing slash needed). */
int imds_new(Http *http, const char *endpoint, usec_t timeout, Imds **ret);
Imds *imds_free(Imds *imds); /* cancels what is in flight without calling callbacks */
DEFINE_TRIVIAL_CLEANUP_FUNC(Imds *, imds_free);

/* GET path (e.g. "/latest/meta-data/iam/security-credentials/") with a session token,
 * fetching or renewing the token first when needed. */
int imds_fetch(Imds *imds, const char *path, imds_fetch_fn done, void *userdata);
/* Drop every fetch that carries this userdata (its owner is going away). */
void imds_cancel(Imds *imds, void *userdata);

/* Token lifetime asked for; renewed when less than IMDS_TOKEN_RENEW_MARGIN is left. */
#define IMDS_TOKEN_TTL_SEC 21600
#define IMDS_TOKEN_RENEW_MARGIN (5 * USEC_PER_MINUTE)
