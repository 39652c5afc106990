/* The antialiased bilinear resize of RGB crops as they are decoded (see _resize_rgb.h).
 *
 * It reproduces torch's uint8 antialiased bilinear kernel to the byte: the same
 * double-precision weights (PIL's triangle filter, support scaled when shrinking), rounded
 * to int16 at the largest precision that holds the largest weight, summed in 32-bit
 * integers with half a unit added, shifted, clamped; the horizontal pass first, its result
 * clamped to uint8, then the vertical one, each skipped when its size does not change.
 * Integer sums do not depend on their order, so any vectorisation gives the same bytes.
 * Resizing each row as it leaves the decoder, while it is still in cache, saves the copy
 * of the crop and torch's passes over it; a mirrored crop is resized by reading its taps
 * backwards, so the flip costs nothing.
 */
#include "_resize_rgb.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void resize_taps_free(ResizeTaps *taps);

/* ---- Taps ---------------------------------------------------------------------------- */

static double triangle(double x) {
    x = fabs(x);
    return x < 1.0 ? 1.0 - x : 0.0;
}

/* Output i's support (its first input, `*xmin`, and how many: the return value) and its
 * normalised weights, in torch's order of operations, which the rounding to int16 makes
 * visible. */
static int64_t support_weights(int64_t i, int64_t in_size, double scale, double support,
                               int64_t most, double *weights, int64_t *xmin) {
    double center = scale * ((double)i + 0.5);
    double invscale = scale >= 1.0 ? 1.0 / scale : 1.0;
    *xmin = (int64_t)(center - support + 0.5);
    if (*xmin < 0)
        *xmin = 0;
    int64_t xmax = (int64_t)(center + support + 0.5);
    int64_t count = (xmax < in_size ? xmax : in_size) - *xmin;
    count = count < 0 ? 0 : count > most ? most : count;
    double total = 0.0;
    for (int64_t j = 0; j < count; j++) {
        weights[j] = triangle(((double)(j + *xmin) - center + 0.5) * invscale);
        total += weights[j];
    }
    if (total != 0.0)
        for (int64_t j = 0; j < count; j++)
            weights[j] /= total;
    return count;
}

/* The weights rounded to int16 at `precision` bits, into fixed[i * most ...]. */
static void round_weights(const double *real, int out_size, int most, const int *counts,
                          unsigned precision, int16_t *fixed) {
    for (int i = 0; i < out_size; i++)
        for (int j = 0; j < counts[i]; j++) {
            double v = real[(size_t)i * (size_t)most + (size_t)j] * (double)(1 << precision);
            fixed[(size_t)i * (size_t)most + (size_t)j] =
                (int16_t)(v < 0 ? (int)(-0.5 + v) : (int)(0.5 + v));
        }
}

/* Drops the weights that rounded to 0 at either end of each output's support (they add
 * nothing to the sums): upscaling then reads 2 pixels an output instead of 3. */
static void trim_zero_weights(const int16_t *fixed, int out_size, int most, int *first,
                              int *counts, int *start) {
    for (int i = 0; i < out_size; i++) {
        const int16_t *weights = fixed + (size_t)i * (size_t)most;
        int low = 0, high = counts[i];
        while (low < high && weights[low] == 0)
            low++;
        while (high > low && weights[high - 1] == 0)
            high--;
        start[i] = low;
        first[i] += low;
        counts[i] = high - low;
    }
}

static int resize_taps_init(ResizeTaps *taps, int in_size, int out_size, int mirror) {
    double scale = (double)in_size / (double)out_size;
    double support = scale >= 1.0 ? 1.0 * scale : 1.0; /* bilinear: interp_size 2, halved */
    int most = (int)ceil(support) * 2 + 1;
    memset(taps, 0, sizeof(*taps));
    taps->out_size = out_size;
    taps->first = malloc(sizeof(int) * (size_t)out_size);
    double *real = calloc((size_t)out_size * (size_t)most, sizeof(double));
    int16_t *fixed = calloc((size_t)out_size * (size_t)most, sizeof(int16_t));
    int *counts = malloc(sizeof(int) * (size_t)out_size);
    int *start = malloc(sizeof(int) * (size_t)out_size);
    int ok = taps->first != NULL && real != NULL && fixed != NULL && counts != NULL &&
             start != NULL;
    double largest = 0.0;
    for (int i = 0; ok && i < out_size; i++) {
        double *row = real + (size_t)i * (size_t)most;
        int64_t xmin;
        counts[i] = (int)support_weights(i, in_size, scale, support, most, row, &xmin);
        taps->first[i] = (int)xmin;
        for (int j = 0; j < counts[i]; j++)
            largest = row[j] > largest ? row[j] : largest;
    }
    unsigned precision = 0;
    for (; precision < 22; precision++)
        if ((int)(0.5 + largest * (double)(1 << (precision + 1))) >= (1 << 15))
            break;
    taps->precision = precision;
    int widest = 0;
    if (ok) {
        round_weights(real, out_size, most, counts, precision, fixed);
        trim_zero_weights(fixed, out_size, most, taps->first, counts, start);
        for (int i = 0; i < out_size; i++)
            widest = counts[i] > widest ? counts[i] : widest;
        /* Even, as the kernels read weights in pairs; at least one pair. */
        taps->taps = widest + (widest & 1) + (widest == 0 ? 2 : 0);
        taps->weights = calloc((size_t)out_size * (size_t)taps->taps, sizeof(int16_t));
        ok = taps->weights != NULL;
    }
    for (int i = 0; ok && i < out_size; i++) {
        /* Mirrored: output i reads the input backwards from its last pixel. */
        int begin = mirror ? in_size - taps->first[i] - counts[i] : taps->first[i];
        /* Outputs with a narrower support than the widest start earlier, behind zero
         * weights, where their taps would reach past the input's end. */
        int moved = begin + taps->taps > in_size ? in_size - taps->taps : begin;
        moved = moved < 0 ? 0 : moved;
        int16_t *weights = taps->weights + (size_t)i * (size_t)taps->taps + (begin - moved);
        const int16_t *kept = fixed + (size_t)i * (size_t)most + start[i];
        for (int j = 0; j < counts[i]; j++)
            weights[mirror ? counts[i] - 1 - j : j] = kept[j];
        taps->first[i] = moved;
    }
    free(real);
    free(fixed);
    free(counts);
    free(start);
    if (!ok) {
        resize_taps_free(taps);
        return -1;
    }
    return 0;
}

static void resize_taps_free(ResizeTaps *taps) {
    free(taps->first);
    free(taps->weights);
    taps->first = NULL;
    taps->weights = NULL;
}


/* ---- Kernels ------------------------------------------------------------------------- */

void resize_row_rgb_scalar(unsigned char *restrict out, const unsigned char *restrict in,
                                  const ResizeTaps *taps) {
    for (int i = 0; i < taps->out_size; i++) {
        const unsigned char *source = in + 3 * (size_t)taps->first[i];
        const int16_t *weights = taps->weights + (size_t)i * (size_t)taps->taps;
        int32_t sum[3] = {half_unit(taps->precision), half_unit(taps->precision),
                          half_unit(taps->precision)};
        for (int t = 0; t < taps->taps; t++)
            for (int c = 0; c < 3; c++)
                sum[c] += weights[t] * (int32_t)source[3 * t + c];
        for (int c = 0; c < 3; c++)
            out[3 * i + c] = clamp_byte(sum[c] >> taps->precision);
    }
}

static void resize_columns_scalar(unsigned char *restrict out, size_t out_stride,
                                  const unsigned char *restrict in, size_t in_stride,
                                  size_t width, const ResizeTaps *taps) {
    for (int o = 0; o < taps->out_size; o++) {
        const unsigned char *rows = in + (size_t)taps->first[o] * in_stride;
        const int16_t *weights = taps->weights + (size_t)o * (size_t)taps->taps;
        unsigned char *target = out + (size_t)o * out_stride;
        for (size_t b = 0; b < width; b++) {
            int32_t sum = half_unit(taps->precision);
            for (int t = 0; t < taps->taps; t++)
                sum += weights[t] * (int32_t)rows[(size_t)t * in_stride + b];
            target[b] = clamp_byte(sum >> taps->precision);
        }
    }
}

static void resize_row_rgb(unsigned char *out, const unsigned char *in, const ResizeTaps *taps) {
#ifdef HAVE_X86_KERNELS
    if (row_kernels_avx2) {
        resize_row_rgb_avx2(out, in, taps);
        return;
    }
#endif
    resize_row_rgb_scalar(out, in, taps);
}

/* Four rows at once: faster than one at a time with AVX2 (every weight loaded once). */
static void resize_4_rows_rgb(unsigned char *const out[4], const unsigned char *const in[4],
                              const ResizeTaps *taps) {
#ifdef HAVE_X86_KERNELS
    if (row_kernels_avx2) {
        resize_4_rows_rgb_avx2(out, in, taps);
        return;
    }
#endif
    for (int r = 0; r < 4; r++)
        resize_row_rgb_scalar(out[r], in[r], taps);
}

static void resize_columns(unsigned char *out, size_t out_stride, const unsigned char *in,
                           size_t in_stride, size_t width, const ResizeTaps *taps) {
#ifdef HAVE_X86_KERNELS
    if (row_kernels_avx2) {
        resize_columns_avx2(out, out_stride, in, in_stride, width, taps);
        return;
    }
#endif
    resize_columns_scalar(out, out_stride, in, in_stride, width, taps);
}

/* ---- A sample's crops ---------------------------------------------------------------- */

/* RGB rows resized across (or copied when the width stays) into rows of `stride` bytes. */
typedef struct {
    RowSink base;
    unsigned char *out;
    size_t stride, width;
    const ResizeTaps *across; /* NULL: the width stays */
    int mirror;
} ResizeSink;

static void resize_take(RowSink *sink, JDIMENSION index, const unsigned char *const *rows,
                        JDIMENSION count) {
    ResizeSink *resize = (ResizeSink *)sink;
    JDIMENSION i = 0;
    if (resize->across != NULL)
        for (; i + 4 <= count; i += 4) {
            unsigned char *targets[4];
            for (int r = 0; r < 4; r++)
                targets[r] = resize->out + (size_t)(index + i + r) * resize->stride;
            resize_4_rows_rgb(targets, rows + i, resize->across);
        }
    for (; i < count; i++) {
        unsigned char *target = resize->out + (size_t)(index + i) * resize->stride;
        if (resize->across != NULL)
            resize_row_rgb(target, rows[i], resize->across);
        else
            copy_row(target, rows[i], resize->width, 3, 3, resize->mirror);
    }
}

void free_plan(ResizePlan *plan) {
    resize_taps_free(&plan->across);
    resize_taps_free(&plan->down);
    free(plan->rows);
    plan->rows = NULL;
}

int plan_resize(ResizePlan *plan, int width, int height, int side, int mirror) {
    memset(plan, 0, sizeof(*plan));
    plan->resize_across = width != side;
    plan->resize_down = height != side;
    plan->stride = (size_t)side * 3;
    if ((plan->resize_across && resize_taps_init(&plan->across, width, side, mirror)) ||
        (plan->resize_down && resize_taps_init(&plan->down, height, side, 0))) {
        free_plan(plan);
        return -1;
    }
    if (plan->resize_down) {
        size_t spare = (size_t)plan->down.taps * plan->stride;
        plan->rows = malloc((size_t)height * plan->stride + spare);
        if (plan->rows == NULL) {
            free_plan(plan);
            return -1;
        }
        memset(plan->rows + (size_t)height * plan->stride, 0, spare);
    }
    return 0;
}

const char *decode_region_resized(const unsigned char *data, size_t size, unsigned char *out,
                                  JDIMENSION x, JDIMENSION y, JDIMENSION width,
                                  JDIMENSION height, const ResizePlan *plan, int fast,
                                  int mirror, ErrorManager *errors, JDIMENSION *image_width,
                                  JDIMENSION *image_height) {
    unsigned char *rows = plan->resize_down ? plan->rows : out;
    ResizeSink sink = {{resize_take}, rows, plan->stride, width,
                       plan->resize_across ? &plan->across : NULL, mirror};
    const char *problem = decode_rows(data, size, x, y, width, height, 0, fast, errors,
                                      image_width, image_height, &sink.base);
    if (problem == NULL && plan->resize_down)
        resize_columns(out, plan->stride, rows, plan->stride, plan->stride, &plan->down);
    return problem;
}
