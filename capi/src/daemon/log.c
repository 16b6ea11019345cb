#include "daemon/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int shoal_log_level = LOG_INFO;
static int journal_format;

static const char *names[] = {"off", "error", "warn", "info", "debug", "trace"};
/* syslog priorities (sd-daemon(3) "<N>" prefixes): err, warning, info, debug */
static const int priorities[] = {7, 3, 4, 6, 7, 7};

int log_level_parse(const char *s) {
    for (int i = 0; i <= LOG_TRACE; i++)
        if (strcmp(s, names[i]) == 0) return i;
    return -1;
}

/* systemd sets JOURNAL_STREAM=<dev>:<inode> of the stream it connected to
 * stderr; it only counts while stderr is still that stream (not redirected). */
static int stderr_is_journal(void) {
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    char extra;
    if (!js || sscanf(js, "%llu:%llu%c", &dev, &ino, &extra) != 2) return 0;
    struct stat st;
    if (fstat(STDERR_FILENO, &st) != 0) return 0;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

int log_format_parse(const char *s) {
    if (strcmp(s, "auto") == 0) return LOG_FORMAT_AUTO;
    if (strcmp(s, "plain") == 0) return LOG_FORMAT_PLAIN;
    if (strcmp(s, "journal") == 0) return LOG_FORMAT_JOURNAL;
    return -1;
}

void log_init(int format) {
    journal_format = format == LOG_FORMAT_JOURNAL || (format == LOG_FORMAT_AUTO && stderr_is_journal());
}

int log_is_journal(void) { return journal_format; }

void log_msg(int level, const char *fmt, ...) {
    char line[2048];
    int n;
    if (journal_format) {
        /* the journal stamps time, pid and unit itself; the prefix is the priority */
        n = snprintf(line, sizeof line, "<%d>", priorities[level]);
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        n = snprintf(line, sizeof line, "%02d:%02d:%02d.%06ld shoald[%d] %-5s ", tm.tm_hour,
                     tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000, (int)getpid(), names[level]);
    }
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof line) vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    /* one line per message: a newline inside would start an unprefixed
     * journal entry at the default priority */
    size_t len = strnlen(line, sizeof line - 2);
    if (journal_format)
        for (size_t i = 0; i < len; i++)
            if (line[i] == '\n') line[i] = ' ';
    /* one write per line so lines from several threads never interleave */
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}
