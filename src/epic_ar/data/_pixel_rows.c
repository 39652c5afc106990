/* Row operations of the partial-decoding extension (see _pixel_rows.h).
 *
 * The resize reproduces torch's uint8 antialiased bilinear kernel to the byte: the same
 * double-precision weights (PIL's triangle filter, support scaled when shrinking), rounded
 * to int16 at the largest precision that holds the largest weight, summed in 32-bit
 * integers with half a unit added, shifted, clamped; the horizontal pass first, its result
 * clamped to uint8, then the vertical one, each skipped when its size does not change.
 * Integer sums do not depend on their order, so any vectorisation gives the same bytes.
 * Resizing each row as it leaves the decoder, while it is still in cache, saves the copy
 * of the crop and torch's passes over it; a mirrored crop is resized by reading its taps
 * backwards, so the flip costs nothing.
 */
#include "_pixel_rows.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_X86_KERNELS 1
static int cpu_has_ssse3, cpu_has_avx2;
#endif

/* ---- Copying rows out ------------------------------------------------------------- */

/* Mirrors one row of RGB pixels: out pixel p = in pixel (width - 1 - p). */
static void mirror_rgb_scalar(unsigned char *restrict out, const unsigned char *restrict in,
                              size_t width) {
    const unsigned char *pixel = in + 3 * (width - 1);
    for (size_t p = 0; p < width; p++, pixel -= 3, out += 3) {
        out[0] = pixel[0];
        out[1] = pixel[1];
        out[2] = pixel[2];
    }
}

/* Grey pixels into every `step`-th byte of `out`, mirrored if asked. */
static void scatter_grey_scalar(unsigned char *restrict out, const unsigned char *restrict in,
                                size_t width, int step, int mirror) {
    if (mirror)
        for (size_t p = 0; p < width; p++)
            out[(size_t)step * p] = in[width - 1 - p];
    else
        for (size_t p = 0; p < width; p++)
            out[(size_t)step * p] = in[p];
}

#ifdef HAVE_X86_KERNELS
/* One byte shuffle per 5 pixels. Each step loads the 16 bytes that start one byte before
 * the 5 source pixels and stores 16 bytes, the last of which the next step overwrites; the
 * loop stops 6 pixels before the end so both stay in the row. */
__attribute__((target("ssse3"))) static void
mirror_rgb_ssse3(unsigned char *restrict out, const unsigned char *restrict in, size_t width) {
    const __m128i reverse = _mm_setr_epi8(13, 14, 15, 10, 11, 12, 7, 8, 9, 4, 5, 6, 1, 2, 3, 0);
    size_t p = 0;
    for (; p + 6 <= width; p += 5) {
        const unsigned char *source = in + 3 * (width - 5 - p) - 1;
        __m128i pixels = _mm_loadu_si128((const __m128i *)source);
        _mm_storeu_si128((__m128i *)(out + 3 * p), _mm_shuffle_epi8(pixels, reverse));
    }
    mirror_rgb_scalar(out + 3 * p, in, width - p);
}

/* 16 pixels a step: each group of 4 is spread to bytes 0, 4, 8, 12 of a 16-byte block and
 * merged into it under a mask, leaving the other channels' bytes as they are. A step
 * touches bytes up to 4 (p + 15) + 3, so the loop stops 17 pixels before the end. */
__attribute__((target("ssse3"))) static void
scatter_grey_ssse3(unsigned char *restrict out, const unsigned char *restrict in, size_t width,
                   int mirror) {
    const __m128i reverse = _mm_setr_epi8(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const __m128i mask = _mm_setr_epi8(-1, 0, 0, 0, -1, 0, 0, 0, -1, 0, 0, 0, -1, 0, 0, 0);
    size_t p = 0;
    for (; p + 17 <= width; p += 16) {
        const unsigned char *source = mirror ? in + width - 16 - p : in + p;
        __m128i pixels = _mm_loadu_si128((const __m128i *)source);
        if (mirror)
            pixels = _mm_shuffle_epi8(pixels, reverse);
        for (int group = 0; group < 4; group++) {
            const __m128i spread = _mm_setr_epi8(
                (char)(4 * group), -1, -1, -1, (char)(4 * group + 1), -1, -1, -1,
                (char)(4 * group + 2), -1, -1, -1, (char)(4 * group + 3), -1, -1, -1);
            __m128i *block = (__m128i *)(out + 4 * (p + 4 * group));
            __m128i kept = _mm_andnot_si128(mask, _mm_loadu_si128(block));
            _mm_storeu_si128(block, _mm_or_si128(kept, _mm_shuffle_epi8(pixels, spread)));
        }
    }
    if (mirror)
        scatter_grey_scalar(out + 4 * p, in, width - p, 4, 1);
    else
        scatter_grey_scalar(out + 4 * p, in + p, width - p, 4, 0);
}
#endif

void copy_row(unsigned char *restrict out, const unsigned char *restrict in, size_t width,
              int channels, int step, int mirror) {
    if (!mirror && step == channels) {
        memcpy(out, in, width * (size_t)channels);
        return;
    }
#ifdef HAVE_X86_KERNELS
    if (cpu_has_ssse3) {
        if (channels == 3)
            mirror_rgb_ssse3(out, in, width);
        else if (step == 4)
            scatter_grey_ssse3(out, in, width, mirror);
        else
            scatter_grey_scalar(out, in, width, step, mirror);
        return;
    }
#endif
    if (channels == 3)
        mirror_rgb_scalar(out, in, width);
    else
        scatter_grey_scalar(out, in, width, step, mirror);
}

/* ---- The resize's taps ------------------------------------------------------------- */

static double triangle(double x) {
    x = fabs(x);
    return x < 1.0 ? 1.0 - x : 0.0;
}

/* Output i's support and normalised weights, in torch's order of operations (which the
 * rounding to int16 makes visible). Returns the number of weights written. */
static int64_t support_weights(int64_t i, int64_t in_size, double scale, double support,
                               int64_t most, double *weights) {
    double center = scale * ((double)i + 0.5);
    double invscale = scale >= 1.0 ? 1.0 / scale : 1.0;
    int64_t xmin = (int64_t)(center - support + 0.5);
    if (xmin < 0)
        xmin = 0;
    int64_t xmax = (int64_t)(center + support + 0.5);
    int64_t count = (xmax < in_size ? xmax : in_size) - xmin;
    count = count < 0 ? 0 : count > most ? most : count;
    double total = 0.0;
    for (int64_t j = 0; j < count; j++) {
        weights[j] = triangle(((double)(j + xmin) - center + 0.5) * invscale);
        total += weights[j];
    }
    if (total != 0.0)
        for (int64_t j = 0; j < count; j++)
            weights[j] /= total;
    weights[most] = (double)xmin; /* handed back in the slot after the weights */
    return count;
}

/* The weights rounded to int16 at `precision` bits, into fixed[i * most ...]. */
static void round_weights(const double *real, int out_size, int most, const int *counts,
                          unsigned precision, int16_t *fixed) {
    for (int i = 0; i < out_size; i++)
        for (int j = 0; j < counts[i]; j++) {
            double v = real[(size_t)i * (size_t)(most + 1) + (size_t)j] * (double)(1 << precision);
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

int resize_taps_init(ResizeTaps *taps, int in_size, int out_size, int mirror) {
    double scale = (double)in_size / (double)out_size;
    double support = scale >= 1.0 ? 1.0 * scale : 1.0; /* bilinear: interp_size 2, halved */
    int most = (int)ceil(support) * 2 + 1;
    memset(taps, 0, sizeof(*taps));
    taps->out_size = out_size;
    taps->first = malloc(sizeof(int) * (size_t)out_size);
    double *real = calloc((size_t)out_size * (size_t)(most + 1), sizeof(double));
    int16_t *fixed = calloc((size_t)out_size * (size_t)most, sizeof(int16_t));
    int *counts = malloc(sizeof(int) * (size_t)out_size);
    int *start = malloc(sizeof(int) * (size_t)out_size);
    int ok = taps->first != NULL && real != NULL && fixed != NULL && counts != NULL &&
             start != NULL;
    double largest = 0.0;
    for (int i = 0; ok && i < out_size; i++) {
        double *row = real + (size_t)i * (size_t)(most + 1);
        counts[i] = (int)support_weights(i, in_size, scale, support, most, row);
        taps->first[i] = (int)row[most];
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

void resize_taps_free(ResizeTaps *taps) {
    free(taps->first);
    free(taps->weights);
    taps->first = NULL;
    taps->weights = NULL;
}

static inline unsigned char clamp_byte(int32_t value) {
    return (unsigned char)(value < 0 ? 0 : value > 255 ? 255 : value);
}

static inline int32_t half_unit(unsigned precision) {
    return precision > 0 ? (int32_t)1 << (precision - 1) : 0;
}

/* ---- The resize's kernels: plain C ------------------------------------------------ */

static void resize_row_rgb_scalar(unsigned char *restrict out, const unsigned char *restrict in,
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

#ifdef HAVE_X86_KERNELS
/* ---- The resize's kernels: AVX2 --------------------------------------------------- */

/* Two outputs a step, one per 128-bit lane. A tap pair of one output is 8 bytes loaded from
 * its source (2 pixels and 2 spare bytes), spread to 16-bit [r0 r1 g0 g1 b0 b1 0 0] and
 * multiplied-and-added with the pair of weights: [r g b 0] in 32 bits. */
__attribute__((target("avx2"))) static void
resize_row_rgb_avx2(unsigned char *restrict out, const unsigned char *restrict in,
                    const ResizeTaps *taps) {
    const __m256i spread = _mm256_setr_epi8(0, -1, 3, -1, 1, -1, 4, -1, 2, -1, 5, -1, -1, -1, -1,
                                            -1, 0, -1, 3, -1, 1, -1, 4, -1, 2, -1, 5, -1, -1, -1,
                                            -1, -1);
    const __m256i half = _mm256_set1_epi32(half_unit(taps->precision));
    const __m128i shift = _mm_cvtsi32_si128((int)taps->precision);
    const int count = taps->taps, outputs = taps->out_size;
    int i = 0;
    for (; i + 2 <= outputs; i += 2) {
        const unsigned char *a = in + 3 * (size_t)taps->first[i];
        const unsigned char *b = in + 3 * (size_t)taps->first[i + 1];
        const int16_t *wa = taps->weights + (size_t)i * (size_t)count;
        const int16_t *wb = wa + count;
        __m256i sum = half;
        for (int t = 0; t < count; t += 2) {
            __m128i low = _mm_loadl_epi64((const __m128i *)(a + 3 * t));
            __m128i high = _mm_loadl_epi64((const __m128i *)(b + 3 * t));
            __m256i pixels = _mm256_inserti128_si256(_mm256_castsi128_si256(low), high, 1);
            int32_t pair_a, pair_b;
            memcpy(&pair_a, wa + t, sizeof pair_a);
            memcpy(&pair_b, wb + t, sizeof pair_b);
            __m256i weights = _mm256_inserti128_si256(
                _mm256_castsi128_si256(_mm_set1_epi32(pair_a)), _mm_set1_epi32(pair_b), 1);
            sum = _mm256_add_epi32(sum,
                                   _mm256_madd_epi16(_mm256_shuffle_epi8(pixels, spread), weights));
        }
        sum = _mm256_sra_epi32(sum, shift);
        sum = _mm256_packus_epi16(_mm256_packs_epi32(sum, sum), sum);
        int32_t first = _mm256_cvtsi256_si32(sum);
        int32_t second = _mm_cvtsi128_si32(_mm256_extracti128_si256(sum, 1));
        memcpy(out + 3 * i, &first, 3);
        memcpy(out + 3 * i + 3, &second, 3);
    }
    if (i < outputs) {
        ResizeTaps last = *taps;
        last.out_size = outputs - i;
        last.first = taps->first + i;
        last.weights = taps->weights + (size_t)i * (size_t)count;
        resize_row_rgb_scalar(out + 3 * i, in, &last);
    }
}

/* Four rows at once, the same output of each: rows 0 and 1 share a register (a lane each),
 * rows 2 and 3 another, and every tap pair's weights are loaded once for the four. */
__attribute__((target("avx2"))) static void
resize_4_rows_rgb_avx2(unsigned char *const out[4], const unsigned char *const in[4],
                       const ResizeTaps *taps) {
    const __m256i spread = _mm256_setr_epi8(0, -1, 3, -1, 1, -1, 4, -1, 2, -1, 5, -1, -1, -1, -1,
                                            -1, 0, -1, 3, -1, 1, -1, 4, -1, 2, -1, 5, -1, -1, -1,
                                            -1, -1);
    const __m256i half = _mm256_set1_epi32(half_unit(taps->precision));
    const __m256i zero = _mm256_setzero_si256();
    const __m128i shift = _mm_cvtsi32_si128((int)taps->precision);
    const int count = taps->taps, outputs = taps->out_size;
    for (int i = 0; i < outputs; i++) {
        const size_t offset = 3 * (size_t)taps->first[i];
        const int16_t *weights = taps->weights + (size_t)i * (size_t)count;
        __m256i rows01 = half, rows23 = half;
        for (int t = 0; t < count; t += 2) {
            const size_t at = offset + 3 * (size_t)t;
            __m256i pixels01 = _mm256_inserti128_si256(
                _mm256_castsi128_si256(_mm_loadl_epi64((const __m128i *)(in[0] + at))),
                _mm_loadl_epi64((const __m128i *)(in[1] + at)), 1);
            __m256i pixels23 = _mm256_inserti128_si256(
                _mm256_castsi128_si256(_mm_loadl_epi64((const __m128i *)(in[2] + at))),
                _mm_loadl_epi64((const __m128i *)(in[3] + at)), 1);
            int32_t pair;
            memcpy(&pair, weights + t, sizeof pair);
            const __m256i k = _mm256_set1_epi32(pair);
            rows01 = _mm256_add_epi32(
                rows01, _mm256_madd_epi16(_mm256_shuffle_epi8(pixels01, spread), k));
            rows23 = _mm256_add_epi32(
                rows23, _mm256_madd_epi16(_mm256_shuffle_epi8(pixels23, spread), k));
        }
        /* Lane 0 ends as [row 0's r g b 0, row 2's r g b 0, zeros], lane 1 the same for
         * rows 1 and 3. */
        __m256i packed = _mm256_packus_epi16(
            _mm256_packs_epi32(_mm256_sra_epi32(rows01, shift), _mm256_sra_epi32(rows23, shift)),
            zero);
        __m128i lane0 = _mm256_castsi256_si128(packed);
        __m128i lane1 = _mm256_extracti128_si256(packed, 1);
        uint32_t pixel[4] = {(uint32_t)_mm_cvtsi128_si32(lane0),
                             (uint32_t)_mm_cvtsi128_si32(lane1),
                             (uint32_t)_mm_extract_epi32(lane0, 1),
                             (uint32_t)_mm_extract_epi32(lane1, 1)};
        /* 4-byte stores, whose last byte the next output overwrites, except at the end. */
        if (i + 1 < outputs)
            for (int r = 0; r < 4; r++)
                memcpy(out[r] + 3 * (size_t)i, &pixel[r], 4);
        else
            for (int r = 0; r < 4; r++)
                memcpy(out[r] + 3 * (size_t)i, &pixel[r], 3);
    }
}

/* 32 bytes of an output row a step: rows are taken in pairs, their bytes interleaved to
 * 16-bit [a0 b0 a1 b1 ...] and multiplied-and-added with the pair of weights. */
__attribute__((target("avx2"))) static void
resize_columns_avx2(unsigned char *restrict out, size_t out_stride,
                    const unsigned char *restrict in, size_t in_stride, size_t width,
                    const ResizeTaps *taps) {
    const __m256i half = _mm256_set1_epi32(half_unit(taps->precision));
    const __m256i zero = _mm256_setzero_si256();
    const __m128i shift = _mm_cvtsi32_si128((int)taps->precision);
    for (int o = 0; o < taps->out_size; o++) {
        const unsigned char *rows = in + (size_t)taps->first[o] * in_stride;
        const int16_t *weights = taps->weights + (size_t)o * (size_t)taps->taps;
        unsigned char *target = out + (size_t)o * out_stride;
        size_t b = 0;
        for (; b + 32 <= width; b += 32) {
            __m256i s0 = half, s1 = half, s2 = half, s3 = half;
            for (int t = 0; t < taps->taps; t += 2) {
                const unsigned char *row = rows + (size_t)t * in_stride + b;
                __m256i upper = _mm256_loadu_si256((const __m256i *)row);
                __m256i lower = _mm256_loadu_si256((const __m256i *)(row + in_stride));
                int32_t pair;
                memcpy(&pair, weights + t, sizeof pair);
                __m256i k = _mm256_set1_epi32(pair);
                __m256i low = _mm256_unpacklo_epi8(upper, lower);
                __m256i high = _mm256_unpackhi_epi8(upper, lower);
                s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(_mm256_unpacklo_epi8(low, zero), k));
                s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(_mm256_unpackhi_epi8(low, zero), k));
                s2 = _mm256_add_epi32(s2, _mm256_madd_epi16(_mm256_unpacklo_epi8(high, zero), k));
                s3 = _mm256_add_epi32(s3, _mm256_madd_epi16(_mm256_unpackhi_epi8(high, zero), k));
            }
            /* Per 128-bit lane the four sums hold bytes 0-3, 4-7, 8-11, 12-15 of that lane,
             * so packing them in that order puts every byte back in place. */
            __m256i first = _mm256_packs_epi32(_mm256_sra_epi32(s0, shift),
                                               _mm256_sra_epi32(s1, shift));
            __m256i second = _mm256_packs_epi32(_mm256_sra_epi32(s2, shift),
                                                _mm256_sra_epi32(s3, shift));
            _mm256_storeu_si256((__m256i *)(target + b), _mm256_packus_epi16(first, second));
        }
        for (; b < width; b++) {
            int32_t sum = half_unit(taps->precision);
            for (int t = 0; t < taps->taps; t++)
                sum += weights[t] * (int32_t)rows[(size_t)t * in_stride + b];
            target[b] = clamp_byte(sum >> taps->precision);
        }
    }
}
#endif

static int use_simd = 1;

void resize_row_rgb(unsigned char *out, const unsigned char *in, const ResizeTaps *taps) {
#ifdef HAVE_X86_KERNELS
    if (use_simd && cpu_has_avx2) {
        resize_row_rgb_avx2(out, in, taps);
        return;
    }
#endif
    resize_row_rgb_scalar(out, in, taps);
}

void resize_4_rows_rgb(unsigned char *const out[4], const unsigned char *const in[4],
                       const ResizeTaps *taps) {
#ifdef HAVE_X86_KERNELS
    if (use_simd && cpu_has_avx2) {
        resize_4_rows_rgb_avx2(out, in, taps);
        return;
    }
#endif
    for (int r = 0; r < 4; r++)
        resize_row_rgb_scalar(out[r], in[r], taps);
}

void resize_columns(unsigned char *out, size_t out_stride, const unsigned char *in,
                    size_t in_stride, size_t width, const ResizeTaps *taps) {
#ifdef HAVE_X86_KERNELS
    if (use_simd && cpu_has_avx2) {
        resize_columns_avx2(out, out_stride, in, in_stride, width, taps);
        return;
    }
#endif
    resize_columns_scalar(out, out_stride, in, in_stride, width, taps);
}

void choose_row_kernels(int allowed) {
    use_simd = allowed;
#ifdef HAVE_X86_KERNELS
    cpu_has_ssse3 = allowed && __builtin_cpu_supports("ssse3");
    cpu_has_avx2 = allowed && __builtin_cpu_supports("avx2");
#endif
}
