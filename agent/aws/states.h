/* states.h: AWS Step Functions task callbacks over AWS JSON 1.0 (SendTaskSuccess, SendTaskFailure,
 * SendTaskHeartbeat): request bodies, and what a heartbeat's answer says of the task. */
#pragma once

#include "util.h"

#define STATES_CONTENT_TYPE        "application/x-amz-json-1.0"
#define STATES_TARGET_TASK_SUCCESS "AWSStepFunctions.SendTaskSuccess"
#define STATES_TARGET_TASK_FAILURE "AWSStepFunctions.SendTaskFailure"
#define STATES_TARGET_TASK_HEARTBEAT "AWSStepFunctions.SendTaskHeartbeat"

#define STATES_TASK_TOKEN_MAX 1024         /* taskToken: 1..1024 */
#define STATES_OUTPUT_MAX     (256 * 1024) /* output: bytes of UTF-8 JSON */
#define STATES_ERROR_MAX      256
#define STATES_CAUSE_MAX      32768

/* {"taskToken":...,"output":"<output_json>"}: output_json must be one JSON document in valid
 * UTF-8 of at most STATES_OUTPUT_MAX bytes. *ret: NUL-terminated, caller frees; it holds the
 * task token, so wipe it (secret_free()) after sending. -EINVAL for an empty or overlong
 * token or output that is not JSON/UTF-8; -EMSGSIZE for output that is too big; -ENOMEM. */
int states_task_success_body(const char *task_token, const char *output_json, char **ret);

/* {"taskToken":...,"error":...,"cause":...}: error and cause (either may be NULL: omitted)
 * are cut to STATES_ERROR_MAX and STATES_CAUSE_MAX bytes at a character boundary (bytes,
 * so the limits hold however the service counts), and bytes that are not UTF-8 become '?'.
 * *ret as above. -EINVAL for an empty or overlong token; -ENOMEM. */
int states_task_failure_body(const char *task_token, const char *error, const char *cause, char **ret);

/* {"taskToken":...}. *ret as above. -EINVAL for an empty or overlong token; -ENOMEM. */
int states_task_heartbeat_body(const char *task_token, char **ret);

/* What a SendTaskHeartbeat answer says of the task that waits for the token. */
typedef enum StatesTaskState {
        STATES_TASK_WAITING, /* 2xx: the run still waits for the result */
        STATES_TASK_GONE,    /* TaskTimedOut, TaskDoesNotExist, InvalidToken: the run ended (stopped,
                              * timed out, failed) or the token is none of Step Functions' */
        STATES_TASK_UNKNOWN, /* anything else (no answer, throttling, 5xx, refused): cannot tell */
} StatesTaskState;

/* http_status: 0 when no answer came; error_code: AWS's code (NULL or "" when none). */
StatesTaskState states_heartbeat_verdict(long http_status, const char *error_code);
