/* Daemon logging to stderr with levels: timestamped lines, or syslog-priority
 * prefixed lines ("<3>...") for the systemd journal. */
#ifndef SHOAL_DAEMON_LOG_H
#define SHOAL_DAEMON_LOG_H

enum { LOG_OFF = 0, LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG, LOG_TRACE };

extern int shoal_log_level;
/* Parses "off".."trace"; -1 if unknown. */
int log_level_parse(const char *s);
enum { LOG_FORMAT_AUTO = 0, LOG_FORMAT_PLAIN, LOG_FORMAT_JOURNAL };
/* Parses "auto"|"plain"|"journal"; -1 if unknown. */
int log_format_parse(const char *s);
/* AUTO picks the journal format when $JOURNAL_STREAM names our stderr. */
void log_init(int format);
int log_is_journal(void);
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define LOGE(...) do { if (shoal_log_level >= LOG_ERROR) log_msg(LOG_ERROR, __VA_ARGS__); } while (0)
#define LOGW(...) do { if (shoal_log_level >= LOG_WARN) log_msg(LOG_WARN, __VA_ARGS__); } while (0)
#define LOGI(...) do { if (shoal_log_level >= LOG_INFO) log_msg(LOG_INFO, __VA_ARGS__); } while (0)
#define LOGD(...) do { if (shoal_log_level >= LOG_DEBUG) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)
#define LOGT(...) do { if (shoal_log_level >= LOG_TRACE) log_msg(LOG_TRACE, __VA_ARGS__); } while (0)

#endif
