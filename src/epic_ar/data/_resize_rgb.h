/* The antialiased bilinear resize of RGB crops, row by row as they are decoded, with
 * torch's uint8 arithmetic (see _resize_rgb.c). */
#ifndef EPIC_AR_RESIZE_RGB_H
#define EPIC_AR_RESIZE_RGB_H

#include <stddef.h>
#include <stdint.h>

#include "_jpeg_rows.h"
#include "_pixel_rows.h"

/* What one axis of a resize reads: output i is the sum over t < taps of
 * weights[i * taps + t] * input[first[i] + t], plus half a unit, shifted right by
 * `precision` and clamped to 0..255. Weights outside an output's own support are 0, and
 * first[i] + taps exceeds the input's size only when taps does: the kernels read at most
 * a pixel and 5 bytes past an input row, and a row past the last input row. */
typedef struct {
    int out_size;
    int taps;           /* weights per output, even: the kernels read them in pairs */
    unsigned precision; /* fixed-point bits of the weights */
    int *first;         /* [out_size] */
    int16_t *weights;   /* [out_size * taps] */
} ResizeTaps;

/* What resizing a sample's crops needs, shared by its frames: the taps of both axes and,
 * when the height changes, the rows resized across (with zeroed spare rows after them,
 * which the column pass reads with zero weights). */
typedef struct {
    ResizeTaps across, down;
    int resize_across, resize_down;
    size_t stride; /* bytes of an output row */
    unsigned char *rows;
} ResizePlan;

/* Plans resizing width x height crops to side x side, mirrored if asked. Returns 0, or -1
 * when out of memory (the plan is then freed). */
int plan_resize(ResizePlan *plan, int width, int height, int side, int mirror);
void free_plan(ResizePlan *plan);

/* Decodes a region of an RGB JPEG into out ([side, side, 3]) as `plan` resizes it. Returns
 * NULL on success, else a message (see decode_rows). */
const char *decode_region_resized(const unsigned char *data, size_t size, unsigned char *out,
                                  JDIMENSION x, JDIMENSION y, JDIMENSION width,
                                  JDIMENSION height, const ResizePlan *plan, int fast,
                                  int mirror, ErrorManager *errors, JDIMENSION *image_width,
                                  JDIMENSION *image_height);

static inline unsigned char clamp_byte(int32_t value) {
    return (unsigned char)(value < 0 ? 0 : value > 255 ? 255 : value);
}

static inline int32_t half_unit(unsigned precision) {
    return precision > 0 ? (int32_t)1 << (precision - 1) : 0;
}

/* One row resized across, in plain C. */
void resize_row_rgb_scalar(unsigned char *out, const unsigned char *in, const ResizeTaps *taps);

#ifdef HAVE_X86_KERNELS
/* The kernels of _resize_rgb_avx2.c, for CPUs with AVX2 (row_kernels_avx2). */
void resize_row_rgb_avx2(unsigned char *out, const unsigned char *in, const ResizeTaps *taps);
void resize_4_rows_rgb_avx2(unsigned char *const out[4], const unsigned char *const in[4],
                            const ResizeTaps *taps);
void resize_columns_avx2(unsigned char *out, size_t out_stride, const unsigned char *in,
                         size_t in_stride, size_t width, const ResizeTaps *taps);
#endif

#endif
