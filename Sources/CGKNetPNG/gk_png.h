// Small libpng helpers for Swift (ImageCodec). libpng reports errors by longjmp, which Swift
// cannot catch, so the setjmp lives here, in C: every helper returns 0 on success or -1 with the
// libpng message copied into `gk_png_info.message`. Nothing here exits or aborts the process.
//
// Decoding uses the full libpng API (not the simplified png_image one) so that samples come back
// exactly as stored: no gamma or sRGB conversion, no alpha premultiplication of 16-bit data.
#pragma once
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/// What a decode produced (after palette/low-bit-depth/tRNS expansion) or why it failed.
typedef struct {
    unsigned int width;
    unsigned int height;
    int channels;          // 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA
    int bit_depth;         // 8 or 16 (16-bit samples in host byte order)
    int source_bit_depth;  // as stored: 1, 2, 4, 8 or 16
    int source_color_type; // PNG_COLOR_TYPE_*
    int interlaced;
    char message[256];
} gk_png_info;

/// An in-memory PNG file being read.
typedef struct {
    const unsigned char *data;
    size_t size;
    size_t offset;
} gk_png_source;

/// A growing output buffer (malloc'ed; the caller frees `data` with free()).
typedef struct {
    unsigned char *data;
    size_t size;
    size_t capacity;
} gk_png_buffer;

static inline void gk_png_on_error(png_structp png, png_const_charp message) {
    gk_png_info *info = (gk_png_info *)png_get_error_ptr(png);
    if (info) snprintf(info->message, sizeof info->message, "%s", message);
    png_longjmp(png, 1);
}

static inline void gk_png_on_warning(png_structp png, png_const_charp message) {
    (void)png;
    (void)message;
}

static inline void gk_png_read_bytes(png_structp png, png_bytep out, size_t count) {
    gk_png_source *source = (gk_png_source *)png_get_io_ptr(png);
    if (source->size - source->offset < count) png_error(png, "unexpected end of file (truncated)");
    memcpy(out, source->data + source->offset, count);
    source->offset += count;
}

static inline void gk_png_write_bytes(png_structp png, png_bytep bytes, size_t count) {
    gk_png_buffer *buffer = (gk_png_buffer *)png_get_io_ptr(png);
    if (buffer->capacity - buffer->size < count) {
        size_t capacity = buffer->capacity ? buffer->capacity : 65536;
        while (capacity - buffer->size < count) capacity *= 2;
        unsigned char *grown = (unsigned char *)realloc(buffer->data, capacity);
        if (!grown) png_error(png, "out of memory");
        buffer->data = grown;
        buffer->capacity = capacity;
    }
    memcpy(buffer->data + buffer->size, bytes, count);
    buffer->size += count;
}

static inline void gk_png_flush(png_structp png) { (void)png; }

static inline int gk_png_is_little_endian(void) {
    const unsigned short probe = 1;
    return *(const unsigned char *)&probe == 1;
}

/// Decodes `data` into `out` (`out_size` bytes, rows of width * channels * bit_depth / 8 bytes).
/// With `out == NULL` only the header is read and `info` filled (the output geometry).
static inline int gk_png_decode(const unsigned char *data, size_t size, unsigned char *out, size_t out_size,
                                gk_png_info *info) {
    info->message[0] = 0;
    gk_png_source source = {data, size, 0};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, info, gk_png_on_error, gk_png_on_warning);
    if (!png) {
        snprintf(info->message, sizeof info->message, "out of memory");
        return -1;
    }
    png_infop header = png_create_info_struct(png);
    if (!header) {
        png_destroy_read_struct(&png, NULL, NULL);
        snprintf(info->message, sizeof info->message, "out of memory");
        return -1;
    }
    png_bytep *volatile rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &header, NULL);
        free((void *)rows);
        return -1;
    }
    png_set_read_fn(png, &source, gk_png_read_bytes);
    png_read_info(png, header);
    int color_type = png_get_color_type(png, header);
    int depth = png_get_bit_depth(png, header);
    info->source_bit_depth = depth;
    info->source_color_type = color_type;
    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color_type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, header, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    if (depth == 16 && gk_png_is_little_endian()) png_set_swap(png);
    info->interlaced = png_set_interlace_handling(png) > 1;
    png_read_update_info(png, header);
    info->width = png_get_image_width(png, header);
    info->height = png_get_image_height(png, header);
    info->channels = png_get_channels(png, header);
    info->bit_depth = png_get_bit_depth(png, header);
    if (out == NULL) {
        png_destroy_read_struct(&png, &header, NULL);
        return 0;
    }
    size_t row_bytes = png_get_rowbytes(png, header);
    if (out_size < row_bytes * info->height) png_error(png, "output buffer too small");
    rows = (png_bytep *)malloc(sizeof(png_bytep) * info->height);
    if (!rows) png_error(png, "out of memory");
    for (unsigned int y = 0; y < info->height; y++) rows[y] = out + (size_t)y * row_bytes;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &header, NULL);
    free((void *)rows);
    return 0;
}

/// Encodes interleaved samples (`channels` 1-4, `bit_depth` 8 or 16 in host byte order) as PNG
/// into `out` (the caller frees `out->data`). `compression_level` is zlib's 0-9.
static inline int gk_png_encode(const unsigned char *pixels, unsigned int width, unsigned int height, int channels,
                                int bit_depth, int compression_level, gk_png_buffer *out, gk_png_info *info) {
    info->message[0] = 0;
    out->data = NULL;
    out->size = 0;
    out->capacity = 0;
    int color_type;
    switch (channels) {
    case 1: color_type = PNG_COLOR_TYPE_GRAY; break;
    case 2: color_type = PNG_COLOR_TYPE_GRAY_ALPHA; break;
    case 3: color_type = PNG_COLOR_TYPE_RGB; break;
    case 4: color_type = PNG_COLOR_TYPE_RGB_ALPHA; break;
    default:
        snprintf(info->message, sizeof info->message, "unsupported channel count %d", channels);
        return -1;
    }
    if (bit_depth != 8 && bit_depth != 16) {
        snprintf(info->message, sizeof info->message, "unsupported bit depth %d", bit_depth);
        return -1;
    }
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, info, gk_png_on_error, gk_png_on_warning);
    if (!png) {
        snprintf(info->message, sizeof info->message, "out of memory");
        return -1;
    }
    png_infop header = png_create_info_struct(png);
    if (!header) {
        png_destroy_write_struct(&png, NULL);
        snprintf(info->message, sizeof info->message, "out of memory");
        return -1;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &header);
        free(out->data);
        out->data = NULL;
        out->size = 0;
        return -1;
    }
    png_set_write_fn(png, out, gk_png_write_bytes, gk_png_flush);
    png_set_IHDR(png, header, width, height, bit_depth, color_type, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_compression_level(png, compression_level);
    png_write_info(png, header);
    if (bit_depth == 16 && gk_png_is_little_endian()) png_set_swap(png);
    size_t row_bytes = (size_t)width * (size_t)channels * (size_t)(bit_depth / 8);
    for (unsigned int y = 0; y < height; y++) png_write_row(png, pixels + (size_t)y * row_bytes);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &header);
    return 0;
}
