/* Row copies of the partial-decoding extension (see _pixel_rows.h). */
#include "_pixel_rows.h"

#include <string.h>

#ifdef HAVE_X86_KERNELS
#include <immintrin.h>
#endif

int row_kernels_ssse3, row_kernels_avx2;

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
    if (row_kernels_ssse3) {
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

void choose_row_kernels(int allowed) {
#ifdef HAVE_X86_KERNELS
    row_kernels_ssse3 = allowed && __builtin_cpu_supports("ssse3");
    row_kernels_avx2 = allowed && __builtin_cpu_supports("avx2");
#else
    (void)allowed;
#endif
}
