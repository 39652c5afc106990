/* Copying decoded rows out of the decoder's buffer: mirrored, or spread into one channel
 * of an RGBA packing; and the choice of SIMD kernels for these and the resize. */
#ifndef EPIC_AR_PIXEL_ROWS_H
#define EPIC_AR_PIXEL_ROWS_H

#include <stddef.h>

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define HAVE_X86_KERNELS 1
#endif

/* Whether the SSSE3 and AVX2 kernels may run (0 where the CPU lacks them, or for tests). */
extern int row_kernels_ssse3, row_kernels_avx2;

/* Copies one row of `width` pixels of `channels` bytes to `step` bytes per output pixel
 * (step 4 for grey frames packed as the channels of an RGBA image), mirrored if asked. */
void copy_row(unsigned char *out, const unsigned char *in, size_t width, int channels, int step,
              int mirror);

/* Lets the SIMD kernels this CPU has run (`allowed` 1, at import) or none (0, for tests). */
void choose_row_kernels(int allowed);

#endif
