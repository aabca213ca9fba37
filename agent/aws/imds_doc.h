/* imds_doc.h: parse the EC2 instance metadata (IMDS) documents heald reads: identity, role list, credentials. */
#pragma once

#include "util.h"

#define IMDS_INSTANCE_ID_MAX 20 /* "i-" + 17 hex + NUL */
#define IMDS_REGION_MAX      32
#define IMDS_ACCOUNT_ID_MAX  13 /* 12 digits + NUL */
#define IMDS_ROLE_NAME_MAX   64 /* IAM's limit */
#define IMDS_CONTEXT_MAX     32 /* instance type, availability zone, AMI id */

typedef struct ImdsIdentity {
        char instance_id[IMDS_INSTANCE_ID_MAX]; /* "i-" + 8 or 17 lowercase hex digits */
        char region[IMDS_REGION_MAX];           /* e.g. "us-east-1", "us-gov-west-1" */
        char account_id[IMDS_ACCOUNT_ID_MAX];   /* 1..12 digits: real ones have 12, the metadata mock 10 */
        /* The instance's context for event details; "" when the document lacks one (they
         * are informative, so a missing one is no reason to refuse the document). */
        char instance_type[IMDS_CONTEXT_MAX];     /* "t3.micro" */
        char availability_zone[IMDS_CONTEXT_MAX]; /* "us-east-1a" */
        char image_id[IMDS_CONTEXT_MAX];          /* "ami-0123456789abcdef0" */
} ImdsIdentity;

/* Parse /latest/dynamic/instance-identity/document. Returns 0 or -EBADMSG with *ret_error
 * (if ret_error is not NULL; caller frees) naming the bad field. */
int imds_parse_identity(const char *body, size_t len, ImdsIdentity *ret, char **ret_error);

/* "arn:<partition>:ec2:<region>:<account>:instance/<id>", the partition derived from the
 * region (aws, aws-cn, aws-us-gov, aws-iso*). Caller frees. */
int imds_identity_instance_arn(const ImdsIdentity *id, char **ret);

/* Parse the /latest/meta-data/iam/security-credentials/ listing: the first line, trimmed,
 * must be an IAM role name ([A-Za-z0-9+=,.@_-], 1..64). *ret_role: caller frees.
 * -ENOENT for an empty listing (no instance profile), -EBADMSG for a bad name. */
int imds_parse_role_list(const char *body, size_t len, char **ret_role, char **ret_error);

typedef struct ImdsCredentials {
        char *access_key_id;     /* owned */
        char *secret_access_key; /* owned, secret: wiped by imds_credentials_done() */
        char *token;             /* owned, secret: wiped by imds_credentials_done() */
        usec_t expiration;       /* wall clock, usec since the epoch */
} ImdsCredentials;

/* Parse /latest/meta-data/iam/security-credentials/<role>. Code must be "Success";
 * AccessKeyId, SecretAccessKey and Token non-empty printable ASCII without spaces (they go
 * into HTTP headers); Expiration ISO 8601 UTC. Secret values are wiped from the parse tree
 * and never appear in *ret_error (caller frees), which names only the field. The caller
 * should wipe body itself. Returns 0, -EBADMSG or -ENOMEM. */
int imds_parse_credentials(const char *body, size_t len, ImdsCredentials *ret, char **ret_error);

/* Wipe and free the secrets and reset the struct; NULL is fine. */
void imds_credentials_done(ImdsCredentials *c);
