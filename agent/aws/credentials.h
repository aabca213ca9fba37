/* credentials.h: the AWS credentials heald signs with: from the environment (development)
 * or the instance role through IMDSv2, refreshed well before they expire. */
#pragma once

#include <systemd/sd-event.h>

#include "aws/imds.h"
#include "aws/sigv4.h"

typedef struct Credentials Credentials;
typedef void (*credentials_changed_fn)(void *userdata);

/* AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN) in the environment win;
 * otherwise imds is asked (borrowed; must outlive the Credentials). */
int credentials_new(sd_event *event, Imds *imds, Credentials **ret);
Credentials *credentials_free(Credentials *c); /* wipes the secrets */
DEFINE_TRIVIAL_CLEANUP_FUNC(Credentials *, credentials_free);

/* changed() runs whenever new credentials become usable. */
void credentials_set_callback(Credentials *c, credentials_changed_fn changed, void *userdata);
/* Start fetching (a no-op for environment credentials). */
int credentials_start(Credentials *c);

/* Credentials valid for long enough to sign and send a request now, or NULL: never
 * expired ones. Borrowed until the next return to the event loop. */
const SigV4Credentials *credentials_get(Credentials *c);
bool credentials_from_environment(const Credentials *c);
/* The role name (IMDS) or "environment"; for logs. */
const char *credentials_source(const Credentials *c);
/* Forget the current credentials and fetch anew at once (AWS said they are invalid). */
void credentials_invalidate(Credentials *c);
/* When the credentials in hand expire (CLOCK_REALTIME): 0 without any, USEC_INFINITY for keys
 * from the environment. */
usec_t credentials_expiration(const Credentials *c);
