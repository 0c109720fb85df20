/* byte_buffer: growth; see byte_buffer.h. */
#include "byte_buffer.h"
#include "qbel_alloc.h"

#include <stdint.h>
#include <stdlib.h>

void
byte_buffer_init(byte_buffer *buffer, char *inline_block, size_t inline_capacity)
{
    buffer->data = inline_block;
    buffer->length = 0;
    buffer->capacity = inline_block ? inline_capacity : 0;
    buffer->data_is_inline = inline_block != NULL;
}

void
byte_buffer_release(byte_buffer *buffer)
{
    if (!buffer->data_is_inline) {
        qbel_free(buffer->data);
    }
    byte_buffer_init(buffer, NULL, 0);
}

char *
byte_buffer_detach(byte_buffer *buffer)
{
    char *block = buffer->data_is_inline ? NULL : buffer->data;
    byte_buffer_init(buffer, NULL, 0);
    return block;
}

int
byte_buffer_grow(byte_buffer *buffer, size_t extra)
{
    if (extra > SIZE_MAX / 2 - buffer->length) {
        return -1;
    }
    size_t needed = buffer->length + extra;
    size_t capacity = buffer->capacity < 64 ? 64 : buffer->capacity;
    while (capacity < needed) {
        capacity *= 2;
    }
    char *grown;
    if (buffer->data_is_inline) {
        grown = qbel_malloc(capacity);
        if (grown != NULL && buffer->length > 0) {
            memcpy(grown, buffer->data, buffer->length);
        }
    }
    else {
        grown = qbel_realloc(buffer->data, capacity);
    }
    if (grown == NULL) {
        return -1;
    }
    buffer->data = grown;
    buffer->capacity = capacity;
    buffer->data_is_inline = false;
    return 0;
}
