/*
 * shoal.i - the one SWIG interface for the shoal C ABI (capi/include/shoal.h).
 *
 * Everything language-neutral lives here: which parameters are out-parameters,
 * which handles exist, how options structs are constructed. Each target
 * language supplies the *how* in a small file next to this one:
 *
 *   python/shoal_python.i   typemaps raising shoal_swig.Error, memoryview payloads
 *   java/shoal_java.i       typemaps to long handles, holder arrays, ByteBuffer payloads
 *
 * The per-language file must define these typemap patterns (applied below):
 *   SWIGTYPE **SHOAL_OUT_HANDLE   a handle returned through `T **out`
 *   uint64_t *SHOAL_OUT_U64       a uint64_t returned through a pointer
 *   int *SHOAL_OUT_INT            an int returned through a pointer
 *   SWIGTYPE *SHOAL_OUT_STRUCT    an info struct filled through a pointer
 *   SHOAL_HANDLE_TYPEMAPS(TYPE)   a macro run for every opaque handle type
 * plus the result-code typemap for shoal_result_t, the payload typemap for
 * `void *shoal_chunk_payload` and the multi-argument typemap for the waitset's
 * (uint64_t *ready_tags, size_t capacity, size_t *ready_count).
 *
 * Generated code is a build output (see swig/CMakeLists.txt); never commit it.
 */

#if defined(SWIGJAVA)
%module ShoalNative
#else
%module(threads="1") shoal_swig
#endif

%{
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "shoal.h"
%}

%include <stdint.i>

#if defined(SWIGPYTHON)
%include "python/shoal_python.i"
#elif defined(SWIGJAVA)
%include "java/shoal_java.i"
#else
#error "shoal.i: no typemaps for this target language (add swig/<language>/shoal_<language>.i)"
#endif

/* ---- opaque handles -------------------------------------------------------- */

SHOAL_HANDLE_TYPEMAPS(shoal_runtime_t)
SHOAL_HANDLE_TYPEMAPS(shoal_publisher_t)
SHOAL_HANDLE_TYPEMAPS(shoal_subscriber_t)
SHOAL_HANDLE_TYPEMAPS(shoal_client_t)
SHOAL_HANDLE_TYPEMAPS(shoal_server_t)
SHOAL_HANDLE_TYPEMAPS(shoal_waitset_t)
SHOAL_HANDLE_TYPEMAPS(shoal_chunk_t)

/* ---- out-parameters of the ABI --------------------------------------------- */

%apply SWIGTYPE **SHOAL_OUT_HANDLE {
    shoal_runtime_t **out,
    shoal_publisher_t **out,
    shoal_subscriber_t **out,
    shoal_client_t **out,
    shoal_server_t **out,
    shoal_waitset_t **out,
    shoal_chunk_t **out,
    shoal_chunk_t **response
};
%apply uint64_t *SHOAL_OUT_U64 { uint64_t *sequence_id };
%apply int *SHOAL_OUT_INT { int *fd };
%apply SWIGTYPE *SHOAL_OUT_STRUCT {
    shoal_pool_info_t *info,
    shoal_port_info_t *info,
    shoal_domain_info_t *info,
    shoal_process_info_t *info
};

/* ---- options structs: constructed initialised, strings owned ---------------- */

/* A new options object is already initialised by its shoal_*_options_init(),
 * so the version field is always right and unset fields mean "default". */
%define SHOAL_OPTIONS(TAG, TYPE, INIT, VERSION)
%extend TAG {
    TAG() {
        TYPE *opts = (TYPE *)calloc(1, sizeof(TYPE));
        if (opts)
            INIT(opts, VERSION);
        return opts;
    }
}
%enddef

SHOAL_OPTIONS(shoal_publisher_options, shoal_publisher_options_t, shoal_publisher_options_init,
              SHOAL_PUBLISHER_OPTIONS_VERSION)
SHOAL_OPTIONS(shoal_subscriber_options, shoal_subscriber_options_t, shoal_subscriber_options_init,
              SHOAL_SUBSCRIBER_OPTIONS_VERSION)
SHOAL_OPTIONS(shoal_client_options, shoal_client_options_t, shoal_client_options_init,
              SHOAL_CLIENT_OPTIONS_VERSION)
SHOAL_OPTIONS(shoal_server_options, shoal_server_options_t, shoal_server_options_init,
              SHOAL_SERVER_OPTIONS_VERSION)

/* Info structs: constructed with the version of the header the binding was
 * built against; out-parameter typemaps set it the same way. */
%{
#define SHOAL_SWIG_VERSION(T) SHOAL_SWIG_VERSION_##T
#define SHOAL_SWIG_VERSION_shoal_pool_info_t SHOAL_POOL_INFO_VERSION
#define SHOAL_SWIG_VERSION_shoal_port_info_t SHOAL_PORT_INFO_VERSION
#define SHOAL_SWIG_VERSION_shoal_domain_info_t SHOAL_DOMAIN_INFO_VERSION
#define SHOAL_SWIG_VERSION_shoal_process_info_t SHOAL_PROCESS_INFO_VERSION
%}
%define SHOAL_INFO(TAG, TYPE)
%extend TAG {
    TAG() {
        TYPE *info = (TYPE *)calloc(1, sizeof(TYPE));
        if (info)
            info->version = SHOAL_SWIG_VERSION(TYPE);
        return info;
    }
}
%immutable TAG::version;
%enddef
SHOAL_INFO(shoal_pool_info, shoal_pool_info_t)
SHOAL_INFO(shoal_port_info, shoal_port_info_t)
SHOAL_INFO(shoal_domain_info, shoal_domain_info_t)
SHOAL_INFO(shoal_process_info, shoal_process_info_t)

/* The runtime options hold two strings: the object owns copies of them and
 * frees them when it is deleted (SWIG's default would leak the copies). */
%extend shoal_runtime_options {
    shoal_runtime_options() {
        shoal_runtime_options_t *opts = (shoal_runtime_options_t *)calloc(1, sizeof(*opts));
        if (opts)
            shoal_runtime_options_init(opts, SHOAL_RUNTIME_OPTIONS_VERSION);
        return opts;
    }
    ~shoal_runtime_options() {
        free((char *)$self->domain);
        free((char *)$self->runtime_dir);
        free($self);
    }
}
%typemap(memberin) const char *domain, const char *runtime_dir {
    free((char *)$1);
    $1 = $input ? strdup($input) : NULL;
}

/* The version fields are set by the constructors above. */
%immutable shoal_runtime_options::version;
%immutable shoal_publisher_options::version;
%immutable shoal_subscriber_options::version;
%immutable shoal_client_options::version;
%immutable shoal_server_options::version;

/* ---- the ABI ------------------------------------------------------------------ */

%include "shoal.h"
