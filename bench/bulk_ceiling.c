/* bench/bulk_ceiling.c: the ingest ceiling for bench_db.py.
 *
 * A bare loop on one connection doing what DBEventLogger's writer does on
 * MariaDB (csrc/mysql_insert.c, bulk path), minus everything else: one
 * prepared INSERT INTO event_log (created_at, uid, event_type, event_data)
 * VALUES (?,?,?,?), executed with MariaDB's column-wise array binding
 * (STMT_ATTR_ARRAY_SIZE) over batches of pre-encoded rows, one COMMIT per
 * batch.  No queue, no encoding, no marker row, no spool: only the client
 * library and the server.  bench_db.py compiles it at bench time against
 * Connector/C (mariadb_config).
 *
 *   bulk_ceiling HOST PORT USER DATABASE ROWS_FILE BATCH_SIZE   (password: env BENCH_DB_PASSWORD)
 *
 * ROWS_FILE: repeated [int32 uid][uint8 type length][type][uint32 json length][json],
 * little-endian.  Prints "<rows> <seconds>" for the timed loop (connect,
 * session set-up and prepare excluded).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mysql.h>

static void
die(const char *what, const char *message)
{
    fprintf(stderr, "bulk_ceiling: %s: %s\n", what, message);
    exit(1);
}

int
main(int argc, char **argv)
{
    if (argc != 7) {
        die("usage", "HOST PORT USER DATABASE ROWS_FILE BATCH_SIZE");
    }
    const char *password = getenv("BENCH_DB_PASSWORD");
    size_t batch_size = (size_t)strtoul(argv[6], NULL, 10);
    FILE *file = fopen(argv[5], "rb");
    if (file == NULL || batch_size == 0) {
        die("rows file", argv[5]);
    }
    fseek(file, 0, SEEK_END);
    long size = ftell(file);
    fseek(file, 0, SEEK_SET);
    char *data = malloc((size_t)size + 1);
    if (data == NULL || fread(data, 1, (size_t)size, file) != (size_t)size) {
        die("rows file", "read failed");
    }
    fclose(file);

    size_t capacity = 1024, rows = 0;
    int *uids = malloc(capacity * sizeof(*uids));
    char **types = malloc(capacity * sizeof(*types));
    unsigned long *type_lengths = malloc(capacity * sizeof(*type_lengths));
    char **jsons = malloc(capacity * sizeof(*jsons));
    unsigned long *json_lengths = malloc(capacity * sizeof(*json_lengths));
    for (long at = 0; at < size;) {
        if (rows == capacity) {
            capacity *= 2;
            uids = realloc(uids, capacity * sizeof(*uids));
            types = realloc(types, capacity * sizeof(*types));
            type_lengths = realloc(type_lengths, capacity * sizeof(*type_lengths));
            jsons = realloc(jsons, capacity * sizeof(*jsons));
            json_lengths = realloc(json_lengths, capacity * sizeof(*json_lengths));
        }
        int32_t uid;
        uint32_t json_length;
        memcpy(&uid, data + at, 4);
        uint8_t type_length = (uint8_t)data[at + 4];
        types[rows] = data + at + 5;
        type_lengths[rows] = type_length;
        memcpy(&json_length, data + at + 5 + type_length, 4);
        jsons[rows] = data + at + 9 + type_length;
        json_lengths[rows] = json_length;
        uids[rows] = uid;
        at += 9 + type_length + json_length;
        rows++;
    }
    /* created_at: now, as the writer fills it per row (pointers to MYSQL_TIME) */
    MYSQL_TIME *times = calloc(rows, sizeof(*times));
    MYSQL_TIME **time_pointers = malloc(rows * sizeof(*time_pointers));
    time_t now = time(NULL);
    struct tm utc;
    gmtime_r(&now, &utc);
    for (size_t i = 0; i < rows; i++) {
        times[i].year = (unsigned)utc.tm_year + 1900;
        times[i].month = (unsigned)utc.tm_mon + 1;
        times[i].day = (unsigned)utc.tm_mday;
        times[i].hour = (unsigned)utc.tm_hour;
        times[i].minute = (unsigned)utc.tm_min;
        times[i].second = (unsigned)utc.tm_sec;
        times[i].time_type = MYSQL_TIMESTAMP_DATETIME;
        time_pointers[i] = &times[i];
    }

    MYSQL *mysql = mysql_init(NULL);
    mysql_optionsv(mysql, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    if (mysql_real_connect(mysql, argv[1], argv[3], password, argv[4],
                           (unsigned)atoi(argv[2]), NULL, 0) == NULL) {
        die("connect", mysql_error(mysql));
    }
    if (mysql_query(mysql, "SET SESSION time_zone = '+00:00', "
                           "sql_mode = 'STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION'") ||
        mysql_autocommit(mysql, 0)) {
        die("session", mysql_error(mysql));
    }
    MYSQL_STMT *stmt = mysql_stmt_init(mysql);
    static const char sql[] =
        "INSERT INTO event_log (created_at, uid, event_type, event_data) VALUES (?,?,?,?)";
    if (mysql_stmt_prepare(stmt, sql, sizeof(sql) - 1)) {
        die("prepare", mysql_stmt_error(stmt));
    }

    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (size_t first = 0; first < rows; first += batch_size) {
        unsigned int count = (unsigned int)(rows - first < batch_size ? rows - first : batch_size);
        MYSQL_BIND bind[4];
        memset(bind, 0, sizeof(bind));
        bind[0].buffer_type = MYSQL_TYPE_DATETIME;
        bind[0].buffer = &time_pointers[first];
        bind[1].buffer_type = MYSQL_TYPE_LONG;
        bind[1].buffer = &uids[first];
        bind[2].buffer_type = MYSQL_TYPE_STRING;
        bind[2].buffer = &types[first];
        bind[2].length = &type_lengths[first];
        bind[3].buffer_type = MYSQL_TYPE_STRING;
        bind[3].buffer = &jsons[first];
        bind[3].length = &json_lengths[first];
        if (mysql_stmt_attr_set(stmt, STMT_ATTR_ARRAY_SIZE, &count) ||
            mysql_stmt_bind_param(stmt, bind) || mysql_stmt_execute(stmt)) {
            die("execute", mysql_stmt_error(stmt));
        }
        if (mysql_commit(mysql)) {
            die("commit", mysql_error(mysql));
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &end);
    double seconds = (double)(end.tv_sec - start.tv_sec) + (double)(end.tv_nsec - start.tv_nsec) / 1e9;
    printf("%zu %.6f\n", rows, seconds);
    mysql_stmt_close(stmt);
    mysql_close(mysql);
    return 0;
}
