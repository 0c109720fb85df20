/* byte_buffer: a growable, overflow-checked byte buffer.
 *
 * Owns: its heap block (malloc/realloc/free, never the Python allocator, so
 * the writer thread may use it without the GIL).  A buffer may start on a
 * caller-provided inline block (typically on the stack); the first growth
 * moves it to the heap.  Appends are inline; growth is out of line.
 */
#ifndef QBEL_BYTE_BUFFER_H
#define QBEL_BYTE_BUFFER_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

typedef struct byte_buffer {
    char *data;
    size_t length;
    size_t capacity;
    bool data_is_inline; /* data points at the caller's inline block */
} byte_buffer;

/* Start empty on `inline_block` (may be NULL when inline_capacity is 0). */
void byte_buffer_init(byte_buffer *buffer, char *inline_block, size_t inline_capacity);

/* Free the heap block, if any.  The buffer is empty and reusable after. */
void byte_buffer_release(byte_buffer *buffer);

/* Hand the heap block over to the caller, who owns it from now on (and frees
 * it with qbel_free); NULL when the data sits on the caller's inline block.
 * Either way the buffer is left empty, on no block. */
char *byte_buffer_detach(byte_buffer *buffer);

/* Make room for `extra` more bytes.  Returns 0, or -1 when the size would
 * overflow or malloc fails (no Python exception is set: callers holding the
 * GIL raise MemoryError themselves). */
int byte_buffer_grow(byte_buffer *buffer, size_t extra);

static inline int
byte_buffer_reserve(byte_buffer *buffer, size_t extra)
{
    if (buffer->capacity - buffer->length >= extra) {
        return 0;
    }
    return byte_buffer_grow(buffer, extra);
}

static inline int
byte_buffer_append(byte_buffer *buffer, const void *bytes, size_t count)
{
    if (byte_buffer_reserve(buffer, count) < 0) {
        return -1;
    }
    memcpy(buffer->data + buffer->length, bytes, count);
    buffer->length += count;
    return 0;
}

static inline int
byte_buffer_append_char(byte_buffer *buffer, char c)
{
    if (byte_buffer_reserve(buffer, 1) < 0) {
        return -1;
    }
    buffer->data[buffer->length++] = c;
    return 0;
}

#define byte_buffer_append_literal(buffer, literal) \
    byte_buffer_append((buffer), (literal), sizeof(literal) - 1)

#endif
