/* The AVX2 kernels of the RGB resize (see _resize_rgb.h): the same sums as the plain C
 * ones, eight 16-bit products at a time. */
#include "_resize_rgb.h"

#ifdef HAVE_X86_KERNELS
#include <immintrin.h>
#include <string.h>

/* Per 128-bit lane, 8 bytes holding 2 RGB pixels and 2 spare bytes become 16-bit
 * [r0 r1 g0 g1 b0 b1 0 0]: multiplied-and-added with a pair of weights, [r g b 0]. */
__attribute__((target("avx2"))) static inline __m256i spread_pixel_pairs(__m256i pixels) {
    const __m256i spread = _mm256_setr_epi8(0, -1, 3, -1, 1, -1, 4, -1, 2, -1, 5, -1, -1, -1, -1,
                                            -1, 0, -1, 3, -1, 1, -1, 4, -1, 2, -1, 5, -1, -1, -1,
                                            -1, -1);
    return _mm256_shuffle_epi8(pixels, spread);
}


/* Two outputs a step, one per 128-bit lane; a tap pair of one output is 8 bytes loaded from
 * its source. */
__attribute__((target("avx2"))) void
resize_row_rgb_avx2(unsigned char *restrict out, const unsigned char *restrict in,
                    const ResizeTaps *taps) {
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
                                   _mm256_madd_epi16(spread_pixel_pairs(pixels), weights));
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
__attribute__((target("avx2"))) void
resize_4_rows_rgb_avx2(unsigned char *const out[4], const unsigned char *const in[4],
                       const ResizeTaps *taps) {
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
                rows01, _mm256_madd_epi16(spread_pixel_pairs(pixels01), k));
            rows23 = _mm256_add_epi32(
                rows23, _mm256_madd_epi16(spread_pixel_pairs(pixels23), k));
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
__attribute__((target("avx2"))) void
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
