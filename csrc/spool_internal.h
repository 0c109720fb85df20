/* spool_internal: what the spool's files share (spool_fds.c,
 * spool_files.c, spool_lines.c, dead_letters.c, spool_replay.c): the file
 * names and the helpers each offers the others.  Nothing outside the spool
 * includes it. */
#ifndef QBEL_SPOOL_INTERNAL_H
#define QBEL_SPOOL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "byte_buffer.h"
#include "event_record.h"
#include "sink.h"


#define SPOOL_PREFIX "qbel-"
#define SPOOL_SUFFIX ".spool"
#define DEAD_PREFIX "qbel-dead-"
#define TEMPORARY_PREFIX ".tmp-" SPOOL_PREFIX

/* ---- spool_fds.c ---- */

/* fclose a stream made by fdopen on a tracked descriptor. */
void spool_close_tracked_stream(FILE *stream);

/* ---- spool_files.c ---- */

/* "<yyyymmddHHMMSS>-<pid>-<random>" (UTC now) into `out`. */
void spool_make_file_id(char out[SPOOL_FILE_ID_MAX]);
/* "<dir>/<prefix><name><suffix>", qbel_malloc'd; NULL on OOM. */
char *spool_join_path(const char *dir, const char *prefix, const char *name, const char *suffix);
/* write() all of it, retrying on EINTR and short writes.  0 or -1 (errno). */
int spool_write_fully(int fd, const char *data, size_t length);

/* ---- spool_lines.c ---- */

/* Append `text` as the body of a JSON string (no quotes): valid UTF-8 is
 * copied, any other byte becomes \u00XX.  0, or -1 on OOM. */
int spool_append_json_string(byte_buffer *out, const char *text, size_t length);
/* The fields every line has before event_data, without braces:
 * "created_at":...,"uid":...,"event_type":...,"batch":...[,"target":...]
 * (no target when `target` is NULL).  0 or -1 (OOM). */
int spool_append_record_fields(byte_buffer *out, const event_record *record,
                               const char *batch_id, const char *target);
/* Turn one complete line (without its newline) into a record, its batch id
 * and its target ("" in lines written before targets were recorded).  NULL
 * with `why` filled when the line is not one of ours. */
event_record *spool_parse_line(const char *line, size_t length,
                               char batch_id[SINK_BATCH_ID_MAX + 1],
                               char target[SINK_IDENTITY_MAX], char *why, size_t why_size);

/* ---- spool_replay.c ---- */

/* Open (read-only, O_NOFOLLOW|O_NONBLOCK) and flock `path` without
 * waiting, after fstat shows a regular file of ours.  The tracked fd; or
 * -1: someone holds it, it vanished or was replayed meanwhile, or it is
 * not to be trusted (then *why says why). */
int spool_claim_file(const char *path, const char **why);

#endif
