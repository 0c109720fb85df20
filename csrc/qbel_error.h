/* qbel_error: the one error channel of the pure-C parts (writer, queue,
 * spool, sinks): a code and a message, carried on the object that failed
 * (hiredis's err + errstr), never printed by the C core itself.
 *
 * Owns nothing: a qbel_error is a plain value, embedded where it is kept.
 * `code` is an errno value for the system calls, the server's error number
 * for a sink (ER_* / CR_*), or QBEL_ERROR_OTHER; 0 means no error.  The
 * message never holds a password.
 */
#ifndef QBEL_ERROR_H
#define QBEL_ERROR_H

#include <stdarg.h>
#include <stdio.h>

#define QBEL_ERROR_MAX 512
/* A failure with no errno or server number of its own. */
#define QBEL_ERROR_OTHER (-1)
/* Not a failure but a report for the operator (e.g. an entry the spool
 * replay skipped): nothing "recovers" from it, so it stays until replaced. */
#define QBEL_ERROR_NOTICE (-2)

typedef struct qbel_error {
    int code;                     /* 0: none */
    char message[QBEL_ERROR_MAX]; /* "" when none */
} qbel_error;

static inline void
qbel_error_clear(qbel_error *error)
{
    error->code = 0;
    error->message[0] = '\0';
}

/* Set `error` to `code` and the printf-style message (truncated to fit). */
static inline void __attribute__((format(printf, 3, 4)))
qbel_error_set(qbel_error *error, int code, const char *format, ...)
{
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(error->message, sizeof(error->message), format, arguments);
    va_end(arguments);
    error->code = code != 0 ? code : QBEL_ERROR_OTHER;
}

static inline int
qbel_error_is_set(const qbel_error *error)
{
    return error->code != 0;
}

#endif
