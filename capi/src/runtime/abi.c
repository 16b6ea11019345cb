#include "runtime/abi.h"

#include <string.h>

#include "core/error.h"

shoal_result_t abi_check(const abi_struct_t *s, uint32_t version) {
    if (version == 0)
        return shoal_error_set(SHOAL_ERR_INVALID_ARGUMENT, "%s.version is 0: %s", s->type, s->fix);
    if (version > s->max)
        return shoal_error_set(SHOAL_ERR_INVALID_ARGUMENT,
                               "%s version %u is newer than this libshoal %s knows (1..%u): the "
                               "program was built against a newer shoal.h; run it with a libshoal "
                               "at least that new",
                               s->type, version, shoal_version(), s->max);
    return SHOAL_OK;
}

shoal_result_t abi_read(const abi_struct_t *s, void *full, const void *caller) {
    uint32_t version = abi_struct_version(caller);
    shoal_result_t rc = abi_check(s, version);
    if (rc != SHOAL_OK) return rc;
    memcpy(full, caller, s->extent[version]);
    return SHOAL_OK;
}

shoal_result_t abi_write(const abi_struct_t *s, void *caller, void *full, uint32_t version) {
    shoal_result_t rc = abi_check(s, version);
    if (rc != SHOAL_OK) return rc;
    memcpy(full, &version, sizeof version);
    memcpy(caller, full, s->extent[version]);
    return SHOAL_OK;
}
