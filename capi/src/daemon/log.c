#include "daemon/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int shoal_log_level = LOG_INFO;

static const char *names[] = {"off", "error", "warn", "info", "debug", "trace"};

int log_level_parse(const char *s) {
    for (int i = 0; i <= LOG_TRACE; i++)
        if (strcmp(s, names[i]) == 0) return i;
    return -1;
}

void log_msg(int level, const char *fmt, ...) {
    char line[2048];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%02d:%02d:%02d.%06ld shoald[%d] %-5s ", tm.tm_hour,
                     tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000, (int)getpid(), names[level]);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof line) vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    /* one write per line so lines from several threads never interleave */
    size_t len = strnlen(line, sizeof line - 2);
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}
