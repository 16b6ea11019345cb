/* Versioned public structs (shoal.h, "Versioned structs"): the caller's
 * `version` says which layout it was compiled against; the library reads
 * and writes only that layout's bytes. */
#ifndef SHOAL_RUNTIME_ABI_H
#define SHOAL_RUNTIME_ABI_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "shoal.h"

/* Bytes of T up to and including `field`: a version's extent, tail padding
 * excluded (a later field may live in it). */
#define ABI_EXTENT(T, field) (offsetof(T, field) + sizeof(((T *)0)->field))

/* One extent per version, [0] unused: ABI_EXTENTS for a struct at version 1,
 * ABI_EXTENTS2 for one at version 2 (the last field of each version). The
 * test build (shoal.h) adds test_v2 as the next version of each. */
#ifdef SHOAL_ABI_TEST_V2
#define ABI_EXTENTS(T, v1_last) {0, ABI_EXTENT(T, v1_last), ABI_EXTENT(T, test_v2)}
#define ABI_EXTENTS2(T, v1_last, v2_last) \
    {0, ABI_EXTENT(T, v1_last), ABI_EXTENT(T, v2_last), ABI_EXTENT(T, test_v2)}
#else
#define ABI_EXTENTS(T, v1_last) {0, ABI_EXTENT(T, v1_last)}
#define ABI_EXTENTS2(T, v1_last, v2_last) {0, ABI_EXTENT(T, v1_last), ABI_EXTENT(T, v2_last)}
#endif

typedef struct abi_struct {
    const char *type;   /* "shoal_publisher_options_t" */
    const char *fix;    /* how a caller sets the version right */
    uint32_t max;       /* newest version this library knows */
    const size_t *extent; /* [version] -> bytes */
} abi_struct_t;

/* The version a caller's struct declares (its first field). */
static inline uint32_t abi_struct_version(const void *caller) {
    uint32_t version;
    memcpy(&version, caller, sizeof version);
    return version;
}

/* SHOAL_OK if `version` is one this library knows, else INVALID_ARGUMENT
 * with a message naming both versions and the fix. */
shoal_result_t abi_check(const abi_struct_t *s, uint32_t version);
/* Copies the caller's struct (its version is its first field) over the
 * library's full one, whose fields beyond that version keep their value. */
shoal_result_t abi_read(const abi_struct_t *s, void *full, const void *caller);
/* Writes the library's full struct into the caller's, as `version`. */
shoal_result_t abi_write(const abi_struct_t *s, void *caller, void *full, uint32_t version);

#endif
