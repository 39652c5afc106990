/* Row operations of the partial-decoding extension: copying decoded rows out (mirrored,
 * or spread into a channel of an RGBA packing) and the antialiased bilinear resize of RGB
 * crops, with torch's uint8 arithmetic. */
#ifndef EPIC_AR_PIXEL_ROWS_H
#define EPIC_AR_PIXEL_ROWS_H

#include <stddef.h>
#include <stdint.h>

/* Bytes that may be read past the end of a row given to resize_row_rgb (the kernels read
 * whole tap pairs and 8-byte groups: at most a pixel and 5 bytes past the last pixel, with
 * zero weight). */
#define RESIZE_ROW_PADDING 64

/* What one axis of a resize reads: output i is the sum over t < taps of
 * weights[i * taps + t] * input[first[i] + t], plus half a unit, shifted right by
 * `precision` and clamped to 0..255. Weights outside an output's own support are 0, and
 * first[i] + taps exceeds the input's size only when taps does. */
typedef struct {
    int out_size;
    int taps;           /* weights per output, even: the kernels read them in pairs */
    unsigned precision; /* fixed-point bits of the weights */
    int *first;         /* [out_size] */
    int16_t *weights;   /* [out_size * taps] */
} ResizeTaps;

/* The taps of torch's antialiased bilinear resize from `in_size` to `out_size` pixels
 * (interpolate(mode="bilinear", antialias=True, align_corners=False) on uint8), reading
 * the input mirrored if `mirror` (output i of the mirrored input, from the unmirrored one).
 * Returns 0, or -1 when out of memory. */
int resize_taps_init(ResizeTaps *taps, int in_size, int out_size, int mirror);
void resize_taps_free(ResizeTaps *taps);

/* One RGB row: out[3 * i + c] for i < taps->out_size, from in (RGB, readable
 * RESIZE_ROW_PADDING bytes past the last pixel the taps name). */
void resize_row_rgb(unsigned char *out, const unsigned char *in, const ResizeTaps *taps);

/* The same for four rows at once (faster than one at a time). */
void resize_4_rows_rgb(unsigned char *const out[4], const unsigned char *const in[4],
                       const ResizeTaps *taps);

/* Resizes columns: out row o (`width` bytes) from in rows first[o] ... first[o] + taps - 1
 * (in must have taps->taps readable rows after the last one the taps name). */
void resize_columns(unsigned char *out, size_t out_stride, const unsigned char *in,
                    size_t in_stride, size_t width, const ResizeTaps *taps);

/* Copies one row of `width` pixels of `channels` bytes to `step` bytes per output pixel
 * (step 4 for grey frames packed as the channels of an RGBA image), mirrored if asked. */
void copy_row(unsigned char *out, const unsigned char *in, size_t width, int channels, int step,
              int mirror);

/* Chooses the SIMD kernels this CPU runs (called once at import); `allowed` 0 forces the
 * plain C ones, for tests. */
void choose_row_kernels(int allowed);

#endif
