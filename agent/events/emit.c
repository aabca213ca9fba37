/* events/emit.c: the one way heal/ and commands/ record an event (see emit.h). */
#include "events/emit.h"

#include "log.h"

int emit_event(emit_fn emit, void *userdata, const char *detail_type, cJSON *detail, const char *check_name) {
        int r = detail ? emit(userdata, detail_type, detail) : -ENOMEM;
        if (r < 0)
                log_error_errno(r, "Failed to record a %s event%s%s: %m", detail_type, check_name ? " for check " : "",
                                check_name ?: "");
        return r;
}

bool emit_add_time(cJSON *detail, const char *key, usec_t realtime) {
        char buf[25];
        format_iso8601_ms(realtime, buf);
        return cJSON_AddStringToObject(detail, key, buf) != NULL;
}
