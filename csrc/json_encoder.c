/* json_encoder: Python objects -> compact, strict RFC 8259 JSON in UTF-8.
 *
 * Owns nothing beyond one call: bytes go straight from the Python objects
 * into the caller's byte_buffer or, for dumps, into the bytes object it
 * returns, the way orjson and msgspec do it.  The hot path (exact
 * str/dict/int/list/None/bool/float) is checked first by type identity, and
 * a container writes the leaves it holds inline, each with the ',' after
 * it; everything rare (subclasses, datetime, UUID, Enum, Decimal,
 * tuple/set, dataclasses, errors) lives in non-inlined cold functions.
 *
 * Errors: every level of the recursion returns -1 with a Python exception
 * set.  For the errors this file raises itself, the path to the offending
 * value is recorded only while the stack unwinds (no cost when encoding
 * succeeds) and the message is rewritten once at the top:
 *     Object of type bytes is not JSON serializable (at $["params"][2])
 */
#include "qbel.h"

#include <math.h>
#if PY_VERSION_HEX < 0x030B0000
#include <longintrepr.h> /* ob_digit; Python.h includes it itself from 3.11 */
#endif

#include "encode_ascii.h"
#include "encode_unicode.h"
#include "float_format.h"
#include "qbel_alloc.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#if defined(__GNUC__) || defined(__clang__)
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#define COLD __attribute__((noinline, cold))
#define ALWAYS_INLINE inline __attribute__((always_inline))
#define NOINLINE __attribute__((noinline))
#else
#define NOINLINE
#define LIKELY(x) (x)
#define UNLIKELY(x) (x)
#define COLD
#define ALWAYS_INLINE inline
#endif

/* One step of the path to a failing value: a key (owned) or an index. */
typedef struct path_segment {
    PyObject *key; /* NULL for an array index */
    Py_ssize_t index;
} path_segment;

/* Room for one segment per container level plus slack; containers nest at
 * most QBEL_MAX_JSON_DEPTH deep before the depth error stops recording. */
#define PATH_SEGMENT_CAPACITY (QBEL_MAX_JSON_DEPTH + 4)

typedef struct json_encoder {
    /* The output: bytes go to cursor, room ends at limit, the block starts
     * at base.  The block is buffer's, whose length is brought up to date
     * only when it grows and at the end (the hot path keeps pointers, not
     * a struct behind a pointer); or, for dumps once the output outgrows
     * its inline block, the storage of `bytes`, the very object returned,
     * so that a large result is never copied. */
    char *cursor;
    char *limit;
    char *base;
    byte_buffer *buffer;
    bool grow_into_bytes;
    PyObject *bytes; /* owned; NULL until then */
    qbel_state *state;
    int depth; /* containers currently open */
    /* Set only by encoder_raise (this file's own TypeError/ValueError); the
     * path is appended to those alone, never to MemoryError or to
     * exceptions raised by user code we called. */
    PyObject *error_type;    /* borrowed exception class */
    PyObject *error_message; /* owned str */
    int segment_count;
    /* innermost first; left uninitialised until an error (4 KiB we do not
     * want to zero on every call) */
    path_segment segments[PATH_SEGMENT_CAPACITY];
} json_encoder;

static int encode_value(json_encoder *encoder, PyObject *obj);

/* ---- buffer ------------------------------------------------------------- */

/* Point cursor and limit into the buffer's (possibly new) block. */
static inline void
encoder_attach(json_encoder *encoder)
{
    byte_buffer *buffer = encoder->buffer;
    encoder->base = buffer->data;
    encoder->cursor = buffer->data + buffer->length;
    encoder->limit = buffer->data + buffer->capacity;
}

/* Bytes written so far: a position that survives the block moving. */
static inline size_t
encoder_offset(const json_encoder *encoder)
{
    return (size_t)(encoder->cursor - encoder->base);
}

/* Bring the buffer's length up to the cursor (while the output is there). */
static inline void
encoder_sync(json_encoder *encoder)
{
    if (encoder->bytes == NULL) {
        encoder->buffer->length = encoder_offset(encoder);
    }
}

/* _PyBytes_Resize (or a new bytes object when *bytes is NULL).  Test builds
 * let the chaos allocator fail it like any allocation of the C core's own,
 * so that the MemoryError paths of dumps stay exercised. */
static int
bytes_resize(PyObject **bytes, size_t size)
{
#ifdef QBEL_TEST_HOOKS
    void *probe = qbel_malloc(1);
    if (probe == NULL) {
        Py_CLEAR(*bytes);
        PyErr_NoMemory();
        return -1;
    }
    qbel_free(probe);
#endif
    if (*bytes == NULL) {
        *bytes = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)size);
        return *bytes == NULL ? -1 : 0;
    }
    return _PyBytes_Resize(bytes, (Py_ssize_t)size); /* frees *bytes on failure */
}

/* dumps: move (or first copy) the output into a bytes object with room for
 * `extra` more, doubling so that each byte is moved amortised once. */
static COLD int
encoder_grow_bytes(json_encoder *encoder, size_t extra)
{
    size_t length = encoder_offset(encoder);
    size_t capacity = (size_t)(encoder->limit - encoder->base);
    if (extra > (size_t)PY_SSIZE_T_MAX / 2 - length) {
        PyErr_NoMemory();
        return -1;
    }
    size_t needed = length + extra;
    size_t grown = capacity < needed / 2 ? needed : 2 * capacity;
    grown = grown < needed ? needed : grown;
    bool first = encoder->bytes == NULL;
    if (bytes_resize(&encoder->bytes, grown) < 0) {
        return -1;
    }
    char *base = PyBytes_AS_STRING(encoder->bytes);
    if (first) {
        memcpy(base, encoder->base, length);
    }
    encoder->base = base;
    encoder->cursor = base + length;
    encoder->limit = base + grown;
    return 0;
}

static COLD int
encoder_grow(json_encoder *encoder, size_t extra)
{
    if (encoder->grow_into_bytes) {
        return encoder_grow_bytes(encoder, extra);
    }
    encoder_sync(encoder);
    if (byte_buffer_grow(encoder->buffer, extra) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    encoder_attach(encoder);
    return 0;
}

static ALWAYS_INLINE int
encoder_reserve(json_encoder *encoder, size_t extra)
{
    if (LIKELY((size_t)(encoder->limit - encoder->cursor) >= extra)) {
        return 0;
    }
    return encoder_grow(encoder, extra);
}

static ALWAYS_INLINE int
encoder_append(json_encoder *encoder, const char *bytes, size_t count)
{
    if (encoder_reserve(encoder, count) < 0) {
        return -1;
    }
    memcpy(encoder->cursor, bytes, count);
    encoder->cursor += count;
    return 0;
}

static ALWAYS_INLINE int
encoder_append_char(json_encoder *encoder, char c)
{
    if (encoder_reserve(encoder, 1) < 0) {
        return -1;
    }
    *encoder->cursor++ = c;
    return 0;
}

#define encoder_append_literal(encoder, literal) \
    encoder_append((encoder), (literal), sizeof(literal) - 1)

static void
encoder_start(json_encoder *encoder, qbel_state *state, byte_buffer *buffer)
{
    encoder->buffer = buffer;
    encoder_attach(encoder);
    encoder->grow_into_bytes = false;
    encoder->bytes = NULL;
    encoder->state = state;
    encoder->depth = 0;
    encoder->error_type = NULL;
    encoder->error_message = NULL;
    encoder->segment_count = 0;
}

/* ---- errors and their paths -------------------------------------------- */

/* Raise `type` with a formatted message and remember it so the path can be
 * appended at the top.  Always returns -1. */
static COLD int
encoder_raise(json_encoder *encoder, PyObject *type, const char *format, ...)
{
    va_list arguments;
    va_start(arguments, format);
    PyObject *message = PyUnicode_FromFormatV(format, arguments);
    va_end(arguments);
    if (message == NULL) {
        return -1;
    }
    Py_XSETREF(encoder->error_message, message);
    encoder->error_type = type;
    PyErr_SetObject(type, message);
    return -1;
}

/* The name json uses in its messages: type(obj).__name__. */
static COLD PyObject *
type_name_of(PyObject *obj)
{
#if PY_VERSION_HEX >= 0x030B0000
    return PyType_GetName(Py_TYPE(obj));
#else
    return PyObject_GetAttrString((PyObject *)Py_TYPE(obj), "__name__");
#endif
}

static COLD int
raise_not_serializable(json_encoder *encoder, PyObject *obj)
{
    PyObject *name = type_name_of(obj);
    if (name == NULL) {
        return -1;
    }
    encoder_raise(encoder, PyExc_TypeError, "Object of type %U is not JSON serializable",
                  name);
    Py_DECREF(name);
    return -1;
}

static COLD int
raise_too_deep(json_encoder *encoder)
{
    return encoder_raise(encoder, PyExc_ValueError,
                         "nested deeper than %d levels (or a circular reference)",
                         QBEL_MAX_JSON_DEPTH);
}

static COLD int
raise_lone_surrogate(json_encoder *encoder, Py_UCS4 code_point, Py_ssize_t index)
{
    char hex[16];
    snprintf(hex, sizeof(hex), "%04X", (unsigned int)code_point);
    return encoder_raise(encoder, PyExc_ValueError,
                         "str contains a lone surrogate U+%s at index %zd, which "
                         "cannot be encoded as UTF-8",
                         hex, index);
}

/* Called while unwinding from a failed child: remember where it sat.  Only
 * for this file's own errors; the key reference is taken. */
static COLD void
path_record_key(json_encoder *encoder, PyObject *key)
{
    if (encoder->error_message == NULL || encoder->segment_count >= PATH_SEGMENT_CAPACITY) {
        return;
    }
    Py_INCREF(key);
    encoder->segments[encoder->segment_count].key = key;
    encoder->segments[encoder->segment_count].index = 0;
    encoder->segment_count++;
}

static COLD void
path_record_index(json_encoder *encoder, Py_ssize_t index)
{
    if (encoder->error_message == NULL || encoder->segment_count >= PATH_SEGMENT_CAPACITY) {
        return;
    }
    encoder->segments[encoder->segment_count].key = NULL;
    encoder->segments[encoder->segment_count].index = index;
    encoder->segment_count++;
}

/* ---- strings ------------------------------------------------------------ */

/* 0: copy as is; otherwise the character after the backslash ('u' means
 * \u00XX).  Only the ASCII half is ever consulted. */
static const char escape_table[256] = {
    ['\0'] = 'u', [0x01] = 'u', [0x02] = 'u', [0x03] = 'u', [0x04] = 'u', [0x05] = 'u',
    [0x06] = 'u', [0x07] = 'u', ['\b'] = 'b', ['\t'] = 't', ['\n'] = 'n', [0x0B] = 'u',
    ['\f'] = 'f', ['\r'] = 'r', [0x0E] = 'u', [0x0F] = 'u', [0x10] = 'u', [0x11] = 'u',
    [0x12] = 'u', [0x13] = 'u', [0x14] = 'u', [0x15] = 'u', [0x16] = 'u', [0x17] = 'u',
    [0x18] = 'u', [0x19] = 'u', [0x1A] = 'u', [0x1B] = 'u', [0x1C] = 'u', [0x1D] = 'u',
    [0x1E] = 'u', [0x1F] = 'u', ['"'] = '"', ['\\'] = '\\',
};

static const char hex_digits[16] = "0123456789abcdef";

/* Write the escape of ASCII `c` (escape_table[c] != 0) at `out`; at most 6
 * bytes.  Returns the new end. */
static inline char *
write_escape(char *out, unsigned char c)
{
    char escape = escape_table[c];
    out[0] = '\\';
    out[1] = escape;
    if (escape != 'u') {
        return out + 2;
    }
    out[2] = '0';
    out[3] = '0';
    out[4] = hex_digits[c >> 4];
    out[5] = hex_digits[c & 0xF];
    return out + 6;
}

/* Copy 16 ASCII bytes from `from` to `to` (either unaligned); true when one
 * of them needs escaping.  SSE2 where the target has it (every x86-64): the
 * signed compare for < 0x20 is exact since every byte is < 0x80. */
static inline bool
copy16_needs_escape(char *to, const unsigned char *from)
{
#if defined(__SSE2__)
    __m128i bytes = _mm_loadu_si128((const __m128i *)(const void *)from);
    _mm_storeu_si128((__m128i *)(void *)to, bytes);
    __m128i special = _mm_or_si128(
        _mm_cmplt_epi8(bytes, _mm_set1_epi8(0x20)),
        _mm_or_si128(_mm_cmpeq_epi8(bytes, _mm_set1_epi8('"')),
                     _mm_cmpeq_epi8(bytes, _mm_set1_epi8('\\'))));
    return _mm_movemask_epi8(special) != 0;
#else
    uint64_t low, high;
    memcpy(&low, from, 8);
    memcpy(&high, from + 8, 8);
    memcpy(to, &low, 8);
    memcpy(to + 8, &high, 8);
    return word_needs_escape(low) || word_needs_escape(high);
#endif
}

/* Index of the first byte of ASCII text `s` that needs escaping, or n.
 * Eight bytes at a time; the tail as one last overlapping word (or two
 * overlapping halves), so clean short strings never loop byte by byte. */
static inline Py_ssize_t
ascii_first_escape(const unsigned char *s, Py_ssize_t n)
{
    Py_ssize_t i = 0;
    if (n >= 8) {
        uint64_t word;
        for (; i + 8 <= n; i += 8) {
            memcpy(&word, s + i, 8);
            if (word_needs_escape(word)) {
                goto bytewise;
            }
        }
        if (i == n) {
            return n;
        }
        memcpy(&word, s + n - 8, 8);
        if (!word_needs_escape(word)) {
            return n;
        }
    }
    else if (n >= 4) {
        uint32_t low, high;
        memcpy(&low, s, 4);
        memcpy(&high, s + n - 4, 4);
        if (!word_needs_escape((uint64_t)low | ((uint64_t)high << 32))) {
            return n;
        }
    }
bytewise:
    for (; i < n; i++) {
        if (escape_table[s[i]]) {
            return i;
        }
    }
    return n;
}

/* ASCII text whose byte `first_escape` needs escaping: runs are memcpy'd,
 * escapes written between them.  The opening quote is already out. */
static int
write_ascii_escaped(json_encoder *encoder, const unsigned char *s, Py_ssize_t n,
                    Py_ssize_t first_escape)
{
    Py_ssize_t i = first_escape;
    for (;;) {
        Py_ssize_t run_end = i + 1 + ascii_first_escape(s + i + 1, n - i - 1);
        /* escape (6) + run + closing quote */
        if (encoder_reserve(encoder, 6 + (size_t)(run_end - i - 1) + 1) < 0) {
            return -1;
        }
        char *out = write_escape(encoder->cursor, s[i]);
        memcpy(out, s + i + 1, (size_t)(run_end - i - 1));
        encoder->cursor = out + (run_end - i - 1);
        if (run_end >= n) {
            break;
        }
        i = run_end;
    }
    *encoder->cursor++ = '"';
    return 0;
}

/* Non-ASCII text of kind 1, 2 or 4, to UTF-8 with its escapes
 * (encode_unicode.c: vectors where the CPU has them).  Beyond what RFC 8259
 * requires, the C1 controls (U+0080..U+009F, terminal escapes such as CSI)
 * and U+2028/U+2029 are escaped too: str.splitlines() and JavaScript treat
 * them as line breaks, and one event must stay one line in the console
 * logger's output whatever the data holds.  Reserves the worst case (6 bytes
 * a character) a chunk at a time, so a huge string does not reserve six
 * times its size at once.  Lone surrogates raise. */
#define STRING_CHUNK 4096

/* Not cold: Querybook's search terms and titles are often non-ASCII.  Out
 * of line so that write_str stays small where it is inlined. */
static NOINLINE int
write_str_non_ascii(json_encoder *encoder, PyObject *str)
{
    if (encoder_append_char(encoder, '"') < 0) {
        return -1;
    }
    const void *data = PyUnicode_DATA(str);
    Py_ssize_t length = PyUnicode_GET_LENGTH(str);
    int kind = PyUnicode_KIND(str);
    for (Py_ssize_t start = 0; start < length; start += STRING_CHUNK) {
        size_t count = (size_t)(length - start < STRING_CHUNK ? length - start : STRING_CHUNK);
        /* and the closing quote */
        if (encoder_reserve(encoder, UNICODE_JSON_ROOM(count) + 1) < 0) {
            return -1;
        }
        unsigned char *out = (unsigned char *)encoder->cursor;
        size_t surrogate_index = 0;
        if (kind == PyUnicode_1BYTE_KIND) {
            out = unicode_latin1_to_json(out, (const Py_UCS1 *)data + start, count);
        }
        else if (kind == PyUnicode_2BYTE_KIND) {
            out = unicode_ucs2_to_json(out, (const Py_UCS2 *)data + start, count,
                                       &surrogate_index);
        }
        else {
            out = unicode_ucs4_to_json(out, (const Py_UCS4 *)data + start, count,
                                       &surrogate_index);
        }
        if (UNLIKELY(out == NULL)) {
            Py_ssize_t index = start + (Py_ssize_t)surrogate_index;
            return raise_lone_surrogate(encoder, PyUnicode_READ(kind, data, index), index);
        }
        encoder->cursor = (char *)out;
    }
    *encoder->cursor++ = '"';
    return 0;
}

#if PY_VERSION_HEX < 0x030C0000
/* Strings made by the deprecated wchar_t APIs are not "ready" before 3.12. */
static COLD int
make_str_ready(PyObject *str)
{
    return PyUnicode_READY(str);
}
#endif

/* Any str (or str subclass: its content) as a JSON string, then `suffix`
 * unless it is 0 (':' after a key, ',' after a member).  ASCII text is
 * copied and checked in one pass, 64 (encode_ascii.c) then 16 bytes a step, the last step
 * ending at the string's end, into room reserved once for the whole
 * string; escapes, if any, reserve more as they are met. */
static ALWAYS_INLINE int
write_str_then(json_encoder *encoder, PyObject *str, char suffix)
{
#if PY_VERSION_HEX < 0x030C0000
    if (UNLIKELY(!PyUnicode_IS_READY(str)) && make_str_ready(str) < 0) {
        return -1;
    }
#endif
    if (UNLIKELY(!PyUnicode_IS_ASCII(str))) {
        goto slow;
    }
    const unsigned char *s = (const unsigned char *)PyUnicode_DATA(str);
    Py_ssize_t n = PyUnicode_GET_LENGTH(str);
    if (encoder_reserve(encoder, (size_t)n + 2 + 16) < 0) {
        return -1;
    }
    char *out = encoder->cursor;
    *out++ = '"';
    Py_ssize_t i = 0;
    if (n <= 16) {
        /* keys and short values: two overlapping words, no loop, no call */
        bool special;
        if (n >= 8) {
            uint64_t head, tail;
            memcpy(&head, s, 8);
            memcpy(&tail, s + n - 8, 8);
            memcpy(out, &head, 8);
            memcpy(out + n - 8, &tail, 8);
            special = word_needs_escape(head) || word_needs_escape(tail);
        }
        else if (n >= 4) {
            uint32_t head, tail;
            memcpy(&head, s, 4);
            memcpy(&tail, s + n - 4, 4);
            memcpy(out, &head, 4);
            memcpy(out + n - 4, &tail, 4);
            special = word_needs_escape((uint64_t)head | ((uint64_t)tail << 32));
        }
        else {
            special = false;
            for (Py_ssize_t k = 0; k < n; k++) {
                out[k] = (char)s[k];
                special |= escape_table[s[k]] != 0;
            }
        }
        if (LIKELY(!special)) {
            out[n] = '"';
            out[n + 1] = suffix;
            encoder->cursor = out + n + 1 + (suffix != 0);
            return 0;
        }
        goto escaped;
    }
    if (n >= 64) {
        /* whole 64-byte blocks in wide vectors; the 16-byte steps find the
         * escape in the block it stopped at, if any */
        i = (Py_ssize_t)ascii_copy_clean_blocks(out, s, (size_t)n);
    }
    for (; i + 16 <= n; i += 16) {
        if (UNLIKELY(copy16_needs_escape(out + i, s + i))) {
            goto escaped;
        }
    }
    /* the last 0..15 bytes: one more 16-byte step ending at the end (n > 16
     * here), overlapping bytes already copied */
    if (i < n) {
        if (UNLIKELY(copy16_needs_escape(out + n - 16, s + n - 16))) {
            goto escaped;
        }
    }
    out[n] = '"';
    out[n + 1] = suffix;
    encoder->cursor = out + n + 1 + (suffix != 0);
    return 0;
escaped:
    i += ascii_first_escape(s + i, n - i);
    encoder->cursor = out + i;
    if (write_ascii_escaped(encoder, s, n, i) < 0) {
        return -1;
    }
    return suffix ? encoder_append_char(encoder, suffix) : 0;
slow:
    if (write_str_non_ascii(encoder, str) < 0) {
        return -1;
    }
    return suffix ? encoder_append_char(encoder, suffix) : 0;
}

/* Any str as a JSON string, nothing after it. */
static int
write_str(json_encoder *encoder, PyObject *str)
{
    return write_str_then(encoder, str, 0);
}

/* ---- numbers ------------------------------------------------------------ */

/* The value of an int below 2^30 in magnitude, read from the object without
 * a call (most ints in events: ids, counts, flags); false for any other. */
#if PY_VERSION_HEX >= 0x030C0000
static inline bool
int_small_value(PyObject *obj, long long *value)
{
    if (!PyUnstable_Long_IsCompact((PyLongObject *)obj)) {
        return false;
    }
    *value = (long long)PyUnstable_Long_CompactValue((PyLongObject *)obj);
    return true;
}
#else
static inline bool
int_small_value(PyObject *obj, long long *value)
{
    /* before 3.12: ob_size is the signed count of 30-bit (or 15-bit)
     * digits; zero has none (and may have no digit allocated) */
    Py_ssize_t size = Py_SIZE(obj);
    if (size == 0) {
        *value = 0;
        return true;
    }
    if (size != 1 && size != -1) {
        return false;
    }
    *value = (long long)size * (long long)((PyLongObject *)obj)->ob_digit[0];
    return true;
}
#endif

/* The digits of n < 10^8 at out (stores may spill up to 7 bytes past
 * them); returns how many.  Counts and small ids take one or two pairs
 * from the table; larger values are made 8 at a time (float_format.h),
 * whose leading '0' bytes give the width. */
static ALWAYS_INLINE int
write_digits_below_1e8(char *out, uint32_t n)
{
    if (n < 100) {
        int width = 1 + (n >= 10);
        memcpy(out, decimal_digit_pairs + 2 * n + 2 - width, 2);
        return width;
    }
    if (n < 10000) {
        unsigned int high = n / 100, low = n % 100;
        int width = 3 + (high >= 10);
        memcpy(out, decimal_digit_pairs + 2 * high + 4 - width, 2);
        memcpy(out + width - 2, decimal_digit_pairs + 2 * low, 2);
        return width;
    }
#ifdef DECIMAL_SWAR_DIGITS
    uint64_t digits = decimal_eight_digits(n);
    int leading_zero_bits = __builtin_ctzll(digits - 0x3030303030303030ULL) & ~7;
    digits >>= leading_zero_bits;
    memcpy(out, &digits, 8);
    return 8 - leading_zero_bits / 8;
#else
    int width = decimal_digit_count(n);
    decimal_write_digits(out, n, width);
    return width;
#endif
}

/* value's digits straight into the buffer (room for the stores' spill
 * reserved), then `suffix` unless it is 0 (as for the *_then writers
 * below). */
static ALWAYS_INLINE int
write_long_long_then(json_encoder *encoder, long long value, char suffix)
{
    if (encoder_reserve(encoder, 32) < 0) {
        return -1;
    }
    char *out = encoder->cursor;
    unsigned long long magnitude = (unsigned long long)value;
    if (value < 0) {
        *out++ = '-';
        magnitude = 0ULL - magnitude;
    }
    int width;
    if (LIKELY(magnitude < 100000000)) {
        width = write_digits_below_1e8(out, (uint32_t)magnitude);
    }
    else if (magnitude < 10000000000000000ULL) {
        width = write_digits_below_1e8(out, (uint32_t)(magnitude / 100000000));
        decimal_write_digits(out + width, magnitude % 100000000, 8);
        width += 8;
    }
    else {
        width = decimal_digit_count(magnitude);
        decimal_write_digits(out, magnitude, width);
    }
    out[width] = suffix;
    encoder->cursor = out + width + (suffix != 0);
    return 0;
}

/* An ASCII str (int/float/Decimal text) copied without quotes. */
static COLD int
write_ascii_text(json_encoder *encoder, PyObject *text)
{
    Py_ssize_t length;
    const char *utf8 = PyUnicode_AsUTF8AndSize(text, &length);
    if (utf8 == NULL) {
        return -1;
    }
    return encoder_append(encoder, utf8, (size_t)length);
}

/* Beyond long long, or any int subclass: int.__repr__, exactly as json
 * does (never the subclass's own __repr__/__str__). */
static COLD int
write_int_text(json_encoder *encoder, PyObject *obj)
{
    PyObject *text = PyLong_Type.tp_repr(obj);
    if (text == NULL) {
        return -1;
    }
    int result = write_ascii_text(encoder, text);
    Py_DECREF(text);
    return result;
}

/* Beyond 2^30: through the C API, still as a long long when it fits. */
static NOINLINE int
write_large_int_then(json_encoder *encoder, PyObject *obj, char suffix)
{
    int overflow;
    long long value = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (UNLIKELY(overflow != 0)) {
        if (write_int_text(encoder, obj) < 0) {
            return -1;
        }
        return suffix ? encoder_append_char(encoder, suffix) : 0;
    }
    if (UNLIKELY(value == -1) && PyErr_Occurred()) {
        return -1;
    }
    return write_long_long_then(encoder, value, suffix);
}

/* Any int (PyLong_Check): bool is handled before we get here. */
static ALWAYS_INLINE int
write_int_then(json_encoder *encoder, PyObject *obj, char suffix)
{
    long long small;
    if (LIKELY(int_small_value(obj, &small))) {
        return write_long_long_then(encoder, small, suffix);
    }
    return write_large_int_then(encoder, obj, suffix);
}

static int
write_int(json_encoder *encoder, PyObject *obj)
{
    return write_int_then(encoder, obj, 0);
}

static int
write_int_then_comma(json_encoder *encoder, PyObject *obj)
{
    return write_int_then(encoder, obj, ',');
}

/* float.__repr__ text (csrc/float_format.c); non-finite values have no JSON
 * form and are null. */
static ALWAYS_INLINE int
write_float_then(json_encoder *encoder, double value, char suffix)
{
    if (UNLIKELY(!isfinite(value))) {
        if (encoder_append_literal(encoder, "null") < 0) {
            return -1;
        }
        return suffix ? encoder_append_char(encoder, suffix) : 0;
    }
    if (encoder_reserve(encoder, FLOAT_FORMAT_BUFFER_SIZE + 1) < 0) {
        return -1;
    }
    char *out = encoder->cursor + float_format_shortest(value, encoder->cursor);
    *out = suffix;
    encoder->cursor = out + (suffix != 0);
    return 0;
}

static int
write_float(json_encoder *encoder, double value)
{
    return write_float_then(encoder, value, 0);
}

/* inline: the call would cost about as much as the float's own layout */
static ALWAYS_INLINE int
write_float_then_comma(json_encoder *encoder, double value)
{
    return write_float_then(encoder, value, ',');
}

/* ---- containers --------------------------------------------------------- */

/* The JSON text of a non-str dict key, as json.dumps converts it; NULL with
 * TypeError for keys json rejects. */
static COLD PyObject *
key_to_text(json_encoder *encoder, PyObject *key)
{
    if (PyUnicode_Check(key)) {
        return Py_NewRef(key);
    }
    if (key == Py_True) {
        return PyUnicode_FromString("true");
    }
    if (key == Py_False) {
        return PyUnicode_FromString("false");
    }
    if (key == Py_None) {
        return PyUnicode_FromString("null");
    }
    if (PyLong_Check(key)) {
        return PyLong_Type.tp_repr(key);
    }
    if (PyFloat_Check(key)) {
        double value = PyFloat_AS_DOUBLE(key);
        if (isnan(value)) {
            return PyUnicode_FromString("NaN");
        }
        if (isinf(value)) {
            return PyUnicode_FromString(value > 0 ? "Infinity" : "-Infinity");
        }
        char text[FLOAT_FORMAT_BUFFER_SIZE];
        size_t length = float_format_shortest(value, text);
        return PyUnicode_FromStringAndSize(text, (Py_ssize_t)length);
    }
    PyObject *name = type_name_of(key);
    if (name != NULL) {
        encoder_raise(encoder, PyExc_TypeError,
                      "keys must be str, int, float, bool or None, not %U", name);
        Py_DECREF(name);
    }
    return NULL;
}

static COLD int
write_key_other(json_encoder *encoder, PyObject *key)
{
    PyObject *text = key_to_text(encoder, key);
    if (text == NULL) {
        return -1;
    }
    int result = write_str(encoder, text);
    Py_DECREF(text);
    return result;
}

/* A str key and its ':' (any other key through its JSON text). */
static ALWAYS_INLINE int
write_key(json_encoder *encoder, PyObject *key)
{
    if (LIKELY(PyUnicode_CheckExact(key))) {
        return write_str_then(encoder, key, ':');
    }
    if (write_key_other(encoder, key) < 0) {
        return -1;
    }
    return encoder_append_char(encoder, ':');
}

/* The values most containers hold (exact str, int and float, None, True,
 * False), written inline with the ',' that follows every member: 0 when
 * written, -1 on error, 1 when `obj` is none of them.  Encoding these runs
 * no Python code, so the container cannot change meanwhile. */
static ALWAYS_INLINE int
try_write_leaf(json_encoder *encoder, PyObject *obj)
{
    PyTypeObject *type = Py_TYPE(obj);
    if (type == &PyUnicode_Type) {
        return write_str_then(encoder, obj, ',');
    }
    if (type == &PyLong_Type) {
        return write_int_then_comma(encoder, obj);
    }
    if (obj == Py_None) {
        return encoder_append_literal(encoder, "null,");
    }
    if (type == &PyFloat_Type) {
        return write_float_then_comma(encoder, PyFloat_AS_DOUBLE(obj));
    }
    if (type == &PyBool_Type) {
        return obj == Py_True ? encoder_append_literal(encoder, "true,")
                              : encoder_append_literal(encoder, "false,");
    }
    return 1;
}

/* `"key":value,` — both borrowed; the caller keeps them alive. */
static inline int
encode_member(json_encoder *encoder, PyObject *key, PyObject *value)
{
    if (UNLIKELY(write_key(encoder, key) < 0)) {
        /* a lone surrogate in the key: point at the key itself */
        if (PyUnicode_Check(key)) {
            path_record_key(encoder, key);
        }
        return -1;
    }
    if (UNLIKELY(encode_value(encoder, value) < 0)) {
        path_record_key(encoder, key);
        return -1;
    }
    return encoder_append_char(encoder, ',');
}

/* After the members, each followed by ',': turn the last ',' into the
 * closing bracket, or append it when there were none. */
static inline int
close_container(json_encoder *encoder, size_t opened_at, char closing)
{
    encoder->depth--;
    if (encoder_offset(encoder) > opened_at + 1) {
        encoder->cursor[-1] = closing;
        return 0;
    }
    return encoder_append_char(encoder, closing);
}

static inline int
open_container(json_encoder *encoder, char opening)
{
    if (UNLIKELY(++encoder->depth > QBEL_MAX_JSON_DEPTH)) {
        return raise_too_deep(encoder);
    }
    return encoder_append_char(encoder, opening);
}

#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(address) __builtin_prefetch(address)
#else
#define PREFETCH(address) ((void)(address))
#endif

/* An exact dict.  Each member is fetched one step ahead and its value's
 * header prefetched, so that reading its type does not stall the next
 * step.  A value other than a leaf may run Python code (a subclass's
 * items(), isoformat(), a dataclass field...) that mutates the dict or
 * frees what it held: the member being encoded is then held while it
 * runs, and the one fetched ahead is fetched again after. */
static int
encode_dict(json_encoder *encoder, PyObject *dict)
{
    size_t opened_at = encoder_offset(encoder);
    if (open_container(encoder, '{') < 0) {
        return -1;
    }
    Py_ssize_t position = 0, size = PyDict_GET_SIZE(dict);
    PyObject *key, *value, *next_key, *next_value;
    int more = PyDict_Next(dict, &position, &next_key, &next_value);
    while (more) {
        key = next_key;
        value = next_value;
        Py_ssize_t next_position = position;
        more = PyDict_Next(dict, &position, &next_key, &next_value);
        if (more) {
            PREFETCH(next_value);
        }
        if (UNLIKELY(write_key(encoder, key) < 0)) {
            if (PyUnicode_Check(key)) {
                path_record_key(encoder, key); /* a lone surrogate in the key */
            }
            return -1;
        }
        int result = try_write_leaf(encoder, value);
        if (result > 0) {
            Py_INCREF(key);
            Py_INCREF(value);
            result = encode_value(encoder, value);
            if (LIKELY(result == 0)) {
                result = encoder_append_char(encoder, ',');
            }
            else {
                path_record_key(encoder, key);
            }
            Py_DECREF(key);
            Py_DECREF(value);
            if (result == 0 && PyDict_GET_SIZE(dict) == size) {
                position = next_position;
                more = PyDict_Next(dict, &position, &next_key, &next_value);
            }
        }
        else if (UNLIKELY(result < 0)) {
            path_record_key(encoder, key); /* a lone surrogate in the value */
        }
        if (UNLIKELY(result < 0)) {
            return -1;
        }
        if (UNLIKELY(PyDict_GET_SIZE(dict) != size)) {
            /* as json.dumps: members were added or removed under us */
            PyErr_SetString(PyExc_RuntimeError, "dictionary changed size during iteration");
            return -1;
        }
    }
    return close_container(encoder, opened_at, '}');
}

#define ARRAY_PREFETCH_DISTANCE 4

/* A list or tuple (or a subclass: their storage, as json does).  The items
 * and their count are read once, and again after any value whose encoding
 * can run Python code (a list may shrink or move its storage under us);
 * leaves run none, so a run of them walks the array from registers. */
static int
encode_array(json_encoder *encoder, PyObject *sequence)
{
    size_t opened_at = encoder_offset(encoder);
    if (open_container(encoder, '[') < 0) {
        return -1;
    }
    PyObject **items = PySequence_Fast_ITEMS(sequence);
    Py_ssize_t size = PySequence_Fast_GET_SIZE(sequence);
    /* Each item's header is prefetched ARRAY_PREFETCH_DISTANCE steps
     * ahead (the first ones here): fresh floats and ints are each a cache
     * miss, and a leaf takes less time to write than a miss takes. */
    for (Py_ssize_t i = 1; i < size && i < ARRAY_PREFETCH_DISTANCE; i++) {
        PREFETCH(items[i]);
    }
    for (Py_ssize_t i = 0; i < size; i++) {
        PyObject *item = items[i];
        if (i + ARRAY_PREFETCH_DISTANCE < size) {
            PREFETCH(items[i + ARRAY_PREFETCH_DISTANCE]);
        }
        int result = try_write_leaf(encoder, item);
        if (result > 0) {
            Py_INCREF(item);
            result = encode_value(encoder, item);
            Py_DECREF(item);
            if (LIKELY(result == 0)) {
                result = encoder_append_char(encoder, ',');
            }
            items = PySequence_Fast_ITEMS(sequence);
            size = PySequence_Fast_GET_SIZE(sequence);
        }
        if (UNLIKELY(result < 0)) {
            path_record_index(encoder, i);
            return -1;
        }
    }
    return close_container(encoder, opened_at, ']');
}

/* A dict subclass: its items(), as json does (OrderedDict order, overrides). */
static COLD int
encode_dict_subclass(json_encoder *encoder, PyObject *dict)
{
    PyObject *items = PyMapping_Items(dict);
    if (items == NULL) {
        return -1;
    }
    size_t opened_at = encoder_offset(encoder);
    if (open_container(encoder, '{') < 0) {
        goto error;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(items); i++) {
        /* items() may hand out a list it keeps and clears while a member is
         * encoded: hold the pair, which holds its key and value */
        PyObject *item = Py_NewRef(PyList_GET_ITEM(items, i));
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2) {
            Py_DECREF(item);
            PyErr_SetString(PyExc_ValueError, "items must return 2-tuples");
            goto error;
        }
        int status = encode_member(encoder, PyTuple_GET_ITEM(item, 0), PyTuple_GET_ITEM(item, 1));
        Py_DECREF(item);
        if (status < 0) {
            goto error;
        }
    }
    Py_DECREF(items);
    return close_container(encoder, opened_at, '}');
error:
    Py_DECREF(items);
    return -1;
}

/* set/frozenset: iterated into a list first, then an array. */
static COLD int
encode_set(json_encoder *encoder, PyObject *set)
{
    PyObject *list = PySequence_List(set);
    if (list == NULL) {
        return -1;
    }
    int result = encode_array(encoder, list);
    Py_DECREF(list);
    return result;
}

/* A dataclass instance: an object of its fields in dataclasses.fields order. */
static COLD int
encode_dataclass(json_encoder *encoder, PyObject *obj)
{
    PyObject *fields = PyObject_CallOneArg(encoder->state->dataclass_fields, obj);
    if (fields == NULL) {
        return -1;
    }
    PyObject *sequence = PySequence_Fast(fields, "dataclasses.fields() must return a sequence");
    Py_DECREF(fields);
    if (sequence == NULL) {
        return -1;
    }
    PyObject *name = NULL, *value = NULL;
    size_t opened_at = encoder_offset(encoder);
    if (open_container(encoder, '{') < 0) {
        goto error;
    }
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(sequence); i++) {
        name = PyObject_GetAttrString(PySequence_Fast_GET_ITEM(sequence, i), "name");
        if (name == NULL) {
            goto error;
        }
        value = PyObject_GetAttr(obj, name);
        if (value == NULL || encode_member(encoder, name, value) < 0) {
            goto error;
        }
        Py_CLEAR(name);
        Py_CLEAR(value);
    }
    Py_DECREF(sequence);
    return close_container(encoder, opened_at, '}');
error:
    Py_XDECREF(name);
    Py_XDECREF(value);
    Py_DECREF(sequence);
    return -1;
}

static int
is_instance_of(PyObject *obj, PyObject *type)
{
    return type != NULL && PyType_Check(type) && PyObject_TypeCheck(obj, (PyTypeObject *)type);
}

/* Write the str returned by obj.method() (or str(obj) when method is NULL). */
static COLD int
write_text_of(json_encoder *encoder, PyObject *obj, const char *method)
{
    PyObject *text = method ? PyObject_CallMethod(obj, method, NULL) : PyObject_Str(obj);
    if (text == NULL) {
        return -1;
    }
    int result;
    if (!PyUnicode_Check(text)) {
        result = raise_not_serializable(encoder, obj);
    }
    else {
        result = write_str(encoder, text);
    }
    Py_DECREF(text);
    return result;
}

static COLD int
encode_decimal(json_encoder *encoder, PyObject *obj)
{
    /* Decimal's own methods, never a subclass's: an overridden __str__
     * could return '1,"uid":9' and forge members (or a raw newline). */
    PyObject *decimal_type = encoder->state->decimal_type;
    PyObject *finite = PyObject_CallMethod(decimal_type, "is_finite", "O", obj);
    if (finite == NULL) {
        return -1;
    }
    int is_finite = PyObject_IsTrue(finite);
    Py_DECREF(finite);
    if (is_finite < 0) {
        return -1;
    }
    if (!is_finite) {
        return encoder_append_literal(encoder, "null");
    }
    PyObject *text = PyObject_CallMethod(decimal_type, "__str__", "O", obj);
    if (text == NULL) {
        return -1;
    }
    int result = write_ascii_text(encoder, text);
    Py_DECREF(text);
    return result;
}

/* Enum -> its value.  Values that are themselves members are unwrapped in
 * a bounded loop so no chain of them can recurse without limit. */
static COLD int
encode_enum(json_encoder *encoder, PyObject *obj)
{
    PyObject *value = Py_NewRef(obj);
    for (int steps = 0; is_instance_of(value, encoder->state->enum_type); steps++) {
        if (steps > QBEL_MAX_JSON_DEPTH) {
            Py_DECREF(value);
            return raise_too_deep(encoder);
        }
        Py_SETREF(value, PyObject_GetAttrString(value, "value"));
        if (value == NULL) {
            return -1;
        }
    }
    int result = encode_value(encoder, value);
    Py_DECREF(value);
    return result;
}

static COLD int
is_dataclass_instance(PyObject *obj)
{
    return !PyType_Check(obj) &&
           PyObject_HasAttrString((PyObject *)Py_TYPE(obj), "__dataclass_fields__");
}

/* Everything but exact str/dict/int/list/float and the three singletons. */
static COLD int
encode_other(json_encoder *encoder, PyObject *obj)
{
    qbel_state *state = encoder->state;
    if (PyUnicode_Check(obj)) {
        return write_str(encoder, obj);
    }
    if (PyLong_Check(obj)) {
        if (obj == Py_True) {
            return encoder_append_literal(encoder, "true");
        }
        if (obj == Py_False) {
            return encoder_append_literal(encoder, "false");
        }
        return write_int(encoder, obj);
    }
    if (PyFloat_Check(obj)) {
        return write_float(encoder, PyFloat_AS_DOUBLE(obj));
    }
    if (PyList_Check(obj) || PyTuple_Check(obj)) {
        return encode_array(encoder, obj);
    }
    if (PyDict_Check(obj)) {
        return encode_dict_subclass(encoder, obj);
    }
    if (is_instance_of(obj, state->datetime_type) || is_instance_of(obj, state->date_type) ||
        is_instance_of(obj, state->time_type)) {
        return write_text_of(encoder, obj, "isoformat");
    }
    if (is_instance_of(obj, state->uuid_type)) {
        return write_text_of(encoder, obj, NULL);
    }
    if (is_instance_of(obj, state->enum_type)) {
        return encode_enum(encoder, obj);
    }
    if (is_instance_of(obj, state->decimal_type)) {
        return encode_decimal(encoder, obj);
    }
    if (PyAnySet_Check(obj)) {
        return encode_set(encoder, obj);
    }
    if (is_dataclass_instance(obj)) {
        return encode_dataclass(encoder, obj);
    }
    return raise_not_serializable(encoder, obj);
}

static int
encode_value(json_encoder *encoder, PyObject *obj)
{
    PyTypeObject *type = Py_TYPE(obj);
    if (type == &PyUnicode_Type) {
        return write_str(encoder, obj);
    }
    if (type == &PyDict_Type) {
        return encode_dict(encoder, obj);
    }
    if (type == &PyLong_Type) {
        return write_int(encoder, obj);
    }
    if (type == &PyList_Type) {
        return encode_array(encoder, obj);
    }
    if (obj == Py_None) {
        return encoder_append_literal(encoder, "null");
    }
    if (obj == Py_True) {
        return encoder_append_literal(encoder, "true");
    }
    if (obj == Py_False) {
        return encoder_append_literal(encoder, "false");
    }
    if (type == &PyFloat_Type) {
        return write_float(encoder, PyFloat_AS_DOUBLE(obj));
    }
    return encode_other(encoder, obj);
}

/* ---- the top ------------------------------------------------------------ */

/* `[index]` or `["key"]` (a key json can't print as UTF-8 falls back to
 * its ascii() form) for each recorded segment, outermost first; long
 * paths (a cycle) keep their two ends. */
static COLD PyObject *
format_path(json_encoder *failed)
{
    char inline_block[512];
    byte_buffer buffer;
    byte_buffer_init(&buffer, inline_block, sizeof(inline_block));
    json_encoder path_writer;
    encoder_start(&path_writer, failed->state, &buffer);

    PyObject *path = NULL;
    const int keep_each_end = 24;
    if (encoder_append_char(&path_writer, '$') < 0) {
        goto done;
    }
    for (int n = failed->segment_count - 1; n >= 0; n--) {
        int outer_position = failed->segment_count - 1 - n;
        if (failed->segment_count > 2 * keep_each_end + 1 && outer_position >= keep_each_end &&
            n >= keep_each_end) {
            if (outer_position == keep_each_end && encoder_append_literal(&path_writer, "...") < 0) {
                goto done;
            }
            continue;
        }
        path_segment *segment = &failed->segments[n];
        if (segment->key == NULL) {
            char digits[32];
            int length = snprintf(digits, sizeof(digits), "[%zd]", segment->index);
            if (encoder_append(&path_writer, digits, (size_t)length) < 0) {
                goto done;
            }
            continue;
        }
        if (encoder_append_char(&path_writer, '[') < 0) {
            goto done;
        }
        size_t mark = encoder_offset(&path_writer);
        PyObject *text = key_to_text(&path_writer, segment->key);
        if (text == NULL) {
            goto done;
        }
        if (write_str(&path_writer, text) < 0) {
            PyErr_Clear();
            Py_CLEAR(path_writer.error_message);
            path_writer.cursor = buffer.data + mark;
            PyObject *ascii = PyObject_ASCII(text);
            if (ascii == NULL) {
                Py_DECREF(text);
                goto done;
            }
            int result = write_ascii_text(&path_writer, ascii);
            Py_DECREF(ascii);
            if (result < 0) {
                Py_DECREF(text);
                goto done;
            }
        }
        Py_DECREF(text);
        if (encoder_append_char(&path_writer, ']') < 0) {
            goto done;
        }
    }
    encoder_sync(&path_writer);
    path = PyUnicode_DecodeUTF8(buffer.data, (Py_ssize_t)buffer.length, "strict");
done:
    Py_XDECREF(path_writer.error_message);
    byte_buffer_release(&buffer);
    return path;
}

/* Re-raise this file's own error with the path appended; other exceptions
 * pass through untouched.  Releases the recorded segments. */
static COLD void
encoder_finish_error(json_encoder *encoder)
{
    if (encoder->error_message != NULL && PyErr_ExceptionMatches(encoder->error_type)) {
        PyErr_Clear();
        PyObject *path = format_path(encoder);
        if (path == NULL) {
            PyErr_Clear();
            PyErr_SetObject(encoder->error_type, encoder->error_message);
        }
        else {
            PyErr_Format(encoder->error_type, "%U (at %U)", encoder->error_message, path);
            Py_DECREF(path);
        }
    }
    for (int n = 0; n < encoder->segment_count; n++) {
        Py_XDECREF(encoder->segments[n].key);
    }
    Py_CLEAR(encoder->error_message);
}

int
json_encode(qbel_state *state, byte_buffer *buffer, PyObject *obj)
{
    json_encoder encoder;
    encoder_start(&encoder, state, buffer);
    int status = encode_value(&encoder, obj);
    encoder_sync(&encoder);
    if (UNLIKELY(status < 0)) {
        encoder_finish_error(&encoder);
        return -1;
    }
    return 0;
}

/* Most events fit here and never touch malloc; a larger output moves once
 * into the bytes object that is returned (encoder_grow_bytes). */
#define DUMPS_INLINE_CAPACITY 4096

PyObject *
json_dumps(PyObject *module, PyObject *obj)
{
    char inline_block[DUMPS_INLINE_CAPACITY];
    byte_buffer buffer;
    byte_buffer_init(&buffer, inline_block, sizeof(inline_block));
    json_encoder encoder;
    encoder_start(&encoder, qbel_state_of_module(module), &buffer);
    encoder.grow_into_bytes = true;
    if (UNLIKELY(encode_value(&encoder, obj) < 0)) {
        Py_CLEAR(encoder.bytes);
        encoder_finish_error(&encoder);
        return NULL;
    }
    size_t length = encoder_offset(&encoder);
    if (encoder.bytes == NULL) {
        return PyBytes_FromStringAndSize(inline_block, (Py_ssize_t)length);
    }
    /* give back the room doubling left (in place: the block is malloc's) */
    if (bytes_resize(&encoder.bytes, length) < 0) {
        return NULL;
    }
    return encoder.bytes;
}
