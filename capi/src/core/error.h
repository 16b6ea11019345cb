/* Per-thread last error detail and result names. */
#ifndef SHOAL_CORE_ERROR_H
#define SHOAL_CORE_ERROR_H

#include "shoal.h"

/* Records the detail message for this thread and returns `code`. */
shoal_result_t shoal_error_set(shoal_result_t code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Keeps `code` but replaces only the message, without formatting. */
shoal_result_t shoal_error_set_text(shoal_result_t code, const char *text);
/* `text` must be a string literal (or live forever): stored, not copied. */
shoal_result_t shoal_error_set_literal(shoal_result_t code, const char *text);
void shoal_error_clear(void);

#endif
