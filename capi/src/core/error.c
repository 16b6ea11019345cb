#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_message[1024];
/* a literal message costs one store: busy-poll loops set one per empty poll */
static _Thread_local const char *last_literal;

shoal_result_t shoal_error_set(shoal_result_t code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_message, sizeof last_message, fmt, ap);
    va_end(ap);
    last_literal = NULL;
    return code;
}

shoal_result_t shoal_error_set_text(shoal_result_t code, const char *text) {
    size_t n = strnlen(text, sizeof last_message - 1);
    memcpy(last_message, text, n);
    last_message[n] = '\0';
    last_literal = NULL;
    return code;
}

shoal_result_t shoal_error_set_literal(shoal_result_t code, const char *text) {
    last_literal = text;
    return code;
}

void shoal_error_clear(void) {
    last_message[0] = '\0';
    last_literal = NULL;
}

SHOAL_API const char *shoal_last_error_message(void) {
    return last_literal ? last_literal : last_message;
}

SHOAL_API const char *shoal_strerror(shoal_result_t r) {
    switch (r) {
    case SHOAL_OK: return "SHOAL_OK: success";
    case SHOAL_ERR_INVALID_ARGUMENT: return "SHOAL_ERR_INVALID_ARGUMENT: an argument is invalid";
    case SHOAL_ERR_TIMEOUT: return "SHOAL_ERR_TIMEOUT: nothing arrived within the timeout";
    case SHOAL_ERR_POOL_EXHAUSTED: return "SHOAL_ERR_POOL_EXHAUSTED: the fitting pool has no free chunk";
    case SHOAL_ERR_CHUNK_TOO_LARGE: return "SHOAL_ERR_CHUNK_TOO_LARGE: larger than every configured pool";
    case SHOAL_ERR_PORT_LIMIT: return "SHOAL_ERR_PORT_LIMIT: the port limit of this kind is reached";
    case SHOAL_ERR_HELD_LIMIT: return "SHOAL_ERR_HELD_LIMIT: the port holds limits.chunks_per_port chunks";
    case SHOAL_ERR_QUEUE_FULL: return "SHOAL_ERR_QUEUE_FULL: the receiver's queue is full";
    case SHOAL_ERR_DAEMON_UNAVAILABLE: return "SHOAL_ERR_DAEMON_UNAVAILABLE: no shoald answers for the domain";
    case SHOAL_ERR_VERSION_MISMATCH: return "SHOAL_ERR_VERSION_MISMATCH: daemon and library ABI versions differ";
    case SHOAL_ERR_PERMISSION:
        return "SHOAL_ERR_PERMISSION: the daemon refused this process's credentials (for the "
               "domain, or for this port by an [access] rule)";
    case SHOAL_ERR_NO_SERVER: return "SHOAL_ERR_NO_SERVER: no server offers the service";
    case SHOAL_ERR_SERVER_GONE: return "SHOAL_ERR_SERVER_GONE: the server holding the request is gone";
    case SHOAL_ERR_CLIENT_GONE: return "SHOAL_ERR_CLIENT_GONE: the requesting client is gone";
    case SHOAL_ERR_CORRUPT: return "SHOAL_ERR_CORRUPT: shared memory failed a bounds check";
    case SHOAL_ERR_NO_MEMORY: return "SHOAL_ERR_NO_MEMORY: out of local memory";
    case SHOAL_ERR_SYSTEM: return "SHOAL_ERR_SYSTEM: a system call failed";
    case SHOAL_ERR_WRONG_PORT: return "SHOAL_ERR_WRONG_PORT: the chunk does not belong to this port";
    case SHOAL_ERR_PROCESS_LIMIT: return "SHOAL_ERR_PROCESS_LIMIT: limits.processes is reached";
    case SHOAL_ERR_SERVICE_LIMIT: return "SHOAL_ERR_SERVICE_LIMIT: limits.services is reached";
    case SHOAL_ERR_ALREADY_EXISTS: return "SHOAL_ERR_ALREADY_EXISTS: already exists";
    case SHOAL_ERR_NOT_FOUND: return "SHOAL_ERR_NOT_FOUND: no such entry";
    case SHOAL_ERR_BUSY: return "SHOAL_ERR_BUSY: a sliced send stopped waiting; the chunk is still yours";
    }
    return "SHOAL_ERR_UNKNOWN: unknown result code";
}

SHOAL_API const char *shoal_version(void) { return SHOAL_VERSION_STRING; }
SHOAL_API uint32_t shoal_abi_version(void) { return SHOAL_ABI_VERSION; }
