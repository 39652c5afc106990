/* Decode only a rectangle of a JPEG, with libjpeg-turbo's partial decompression.
 *
 * Training crops cover about half of an EPIC frame, so decoding only the crop (plus a
 * margin, see below) skips most of the inverse DCT, upsampling and colour conversion, and
 * the entropy decoding of the rows below the crop.
 *
 * libjpeg-turbo decodes a horizontal window that starts on an iMCU boundary
 * (jpeg_crop_scanline) and can skip whole rows (jpeg_skip_scanlines). Fancy upsampling
 * looks at neighbouring samples, which at the window's edges are replaced by edge copies;
 * decoding a window widened by MARGIN pixels on each side (and starting MARGIN rows above
 * the crop) keeps those edges away from the pixels returned, so the result equals the same
 * rectangle of a full decode (tested against full decodes).
 *
 * The libjpeg calls go through a table (`jpeg`): by default the library linked at build
 * time (the system's), or another libjpeg-turbo loaded by `use_library`, which epic-ar
 * points at the 3.x build that Pillow's wheels bundle: its decoder is faster than the 2.1
 * series some systems ship, and its pixels are the same.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#ifndef _WIN32
#include <dlfcn.h>
#define HAVE_DLOPEN 1
#endif

#ifndef LIBJPEG_TURBO_VERSION
#error "partial decoding needs libjpeg-turbo (jpeg_crop_scanline)"
#endif

#define MARGIN 8
#define ROWS_PER_READ 16

typedef struct {
    struct jpeg_error_mgr *(*std_error)(struct jpeg_error_mgr *);
    void (*create_decompress)(j_decompress_ptr, int, size_t);
    void (*mem_src)(j_decompress_ptr, const unsigned char *, unsigned long);
    int (*read_header)(j_decompress_ptr, boolean);
    boolean (*start_decompress)(j_decompress_ptr);
    void (*crop_scanline)(j_decompress_ptr, JDIMENSION *, JDIMENSION *);
    JDIMENSION (*skip_scanlines)(j_decompress_ptr, JDIMENSION);
    JDIMENSION (*read_scanlines)(j_decompress_ptr, JSAMPARRAY, JDIMENSION);
    void (*abort_decompress)(j_decompress_ptr);
    void (*destroy_decompress)(j_decompress_ptr);
} JpegLibrary;

static const JpegLibrary linked = {
    jpeg_std_error,      jpeg_CreateDecompress, jpeg_mem_src,       jpeg_read_header,
    jpeg_start_decompress, jpeg_crop_scanline,  jpeg_skip_scanlines, jpeg_read_scanlines,
    jpeg_abort_decompress, jpeg_destroy_decompress,
};
/* The library in use. A decode reads the pointer once, so use_library (which swaps it for a
 * table it never frees) cannot mix two libraries in one decode running on another thread. */
static const JpegLibrary *volatile in_use = &linked;
static PyObject *library_path; /* its file (None: the linked one) */

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
} ErrorManager;

static void raise_error(j_common_ptr cinfo) {
    ErrorManager *errors = (ErrorManager *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, errors->message);
    longjmp(errors->jump, 1);
}

/* Corrupt-data warnings (level -1: truncated file, extraneous bytes) fail the decode, as
 * they do in the full-frame decoder (simplejpeg): a damaged frame is an error, never a
 * silently grey patch. Trace messages (level >= 0) are ignored. */
static void fail_on_warning(j_common_ptr cinfo, int level) {
    if (level < 0)
        raise_error(cinfo);
}

/* Mirrors one row of RGB pixels: out pixel p = in pixel (width - 1 - p). */
static void mirror_rgb_scalar(unsigned char *restrict out, const unsigned char *restrict in,
                              JDIMENSION width) {
    const unsigned char *pixel = in + (size_t)3 * (width - 1);
    for (JDIMENSION p = 0; p < width; p++, pixel -= 3, out += 3) {
        out[0] = pixel[0];
        out[1] = pixel[1];
        out[2] = pixel[2];
    }
}

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <tmmintrin.h>
#define HAVE_SSSE3_MIRROR 1
static int cpu_has_ssse3; /* set once, when the module is imported */

/* The same with one byte shuffle per 5 pixels (the flip is then almost free; the scalar
 * loop costs about a tenth of a crop's decoding time). Each step loads the 16 bytes that
 * start one byte before the 5 source pixels and stores 16 bytes, the last of which the
 * next step overwrites; the loop stops 6 pixels before the end so both stay in the row. */
__attribute__((target("ssse3"))) static void
mirror_rgb_ssse3(unsigned char *restrict out, const unsigned char *restrict in, JDIMENSION width) {
    const __m128i reverse = _mm_setr_epi8(13, 14, 15, 10, 11, 12, 7, 8, 9, 4, 5, 6, 1, 2, 3, 0);
    JDIMENSION p = 0;
    for (; p + 6 <= width; p += 5) {
        const unsigned char *source = in + (size_t)3 * (width - 5 - p) - 1;
        __m128i pixels = _mm_loadu_si128((const __m128i *)source);
        _mm_storeu_si128((__m128i *)(out + (size_t)3 * p), _mm_shuffle_epi8(pixels, reverse));
    }
    mirror_rgb_scalar(out + (size_t)3 * p, in, width - p);
}
#endif

static void mirror_rgb(unsigned char *restrict out, const unsigned char *restrict in,
                       JDIMENSION width) {
#ifdef HAVE_SSSE3_MIRROR
    if (cpu_has_ssse3) {
        mirror_rgb_ssse3(out, in, width);
        return;
    }
#endif
    mirror_rgb_scalar(out, in, width);
}

/* Grey pixels into every `step`-th byte of `out` (step 4: one channel of the RGBA packing
 * the resize uses), mirrored if asked: out[step p] = in[p] (or in[width - 1 - p]). */
static void scatter_grey_scalar(unsigned char *restrict out, const unsigned char *restrict in,
                                JDIMENSION width, int step, int mirror) {
    if (mirror)
        for (JDIMENSION p = 0; p < width; p++)
            out[(size_t)step * p] = in[width - 1 - p];
    else
        for (JDIMENSION p = 0; p < width; p++)
            out[(size_t)step * p] = in[p];
}

#ifdef HAVE_SSSE3_MIRROR
/* 16 pixels a step: each group of 4 is spread to bytes 0, 4, 8, 12 of a 16-byte block and
 * merged into it under a mask, leaving the other channels' bytes as they are. A step
 * touches bytes up to 4 (p + 15) + 3 (past `out`'s own channel by up to 3 bytes, all inside
 * the packing), so the loop stops 17 pixels before the end and the rest goes pixel by pixel. */
__attribute__((target("ssse3"))) static void
scatter_grey_ssse3(unsigned char *restrict out, const unsigned char *restrict in,
                   JDIMENSION width, int mirror) {
    const __m128i reverse = _mm_setr_epi8(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const __m128i mask = _mm_setr_epi8(-1, 0, 0, 0, -1, 0, 0, 0, -1, 0, 0, 0, -1, 0, 0, 0);
    JDIMENSION p = 0;
    for (; p + 17 <= width; p += 16) {
        const unsigned char *source = mirror ? in + width - 16 - p : in + p;
        __m128i pixels = _mm_loadu_si128((const __m128i *)source);
        if (mirror)
            pixels = _mm_shuffle_epi8(pixels, reverse);
        for (int group = 0; group < 4; group++) {
            const __m128i spread = _mm_setr_epi8(
                (char)(4 * group), -1, -1, -1, (char)(4 * group + 1), -1, -1, -1,
                (char)(4 * group + 2), -1, -1, -1, (char)(4 * group + 3), -1, -1, -1);
            __m128i *block = (__m128i *)(out + (size_t)4 * (p + 4 * group));
            __m128i kept = _mm_andnot_si128(mask, _mm_loadu_si128(block));
            _mm_storeu_si128(block, _mm_or_si128(kept, _mm_shuffle_epi8(pixels, spread)));
        }
    }
    if (mirror)
        scatter_grey_scalar(out + (size_t)4 * p, in, width - p, 4, 1);
    else
        scatter_grey_scalar(out + (size_t)4 * p, in + p, width - p, 4, 0);
}
#endif

/* Copies one row of the crop out of the scanline buffer, `step` bytes per output pixel
 * (step 4 for grey frames packed as the channels of one RGBA image, ready for the resize),
 * mirrored if asked: the random flip and the packing cost nothing extra here. */
static void copy_row(unsigned char *restrict out, const unsigned char *restrict in,
                     JDIMENSION width, int channels, int step, int mirror) {
    if (!mirror && step == channels) {
        memcpy(out, in, (size_t)width * channels);
    } else if (channels == 3) { /* RGB (whose step is always 3), mirrored */
        mirror_rgb(out, in, width);
    } else {
#ifdef HAVE_SSSE3_MIRROR
        if (step == 4 && cpu_has_ssse3) {
            scatter_grey_ssse3(out, in, width, mirror);
            return;
        }
#endif
        scatter_grey_scalar(out, in, width, step, mirror);
    }
}

/* Returns NULL on success, else a static or error-manager message. */
static const char *decode_region(const unsigned char *data, size_t size, unsigned char *out,
                                 JDIMENSION x, JDIMENSION y, JDIMENSION width,
                                 JDIMENSION height, int gray, int fast, int mirror,
                                 int step, ErrorManager *errors,
                                 JDIMENSION *image_width, JDIMENSION *image_height) {
    const JpegLibrary *const jpeg = in_use;
    struct jpeg_decompress_struct cinfo;
    unsigned char *volatile row = NULL;
    const char *problem = NULL;
    int channels = gray ? 1 : 3;

    cinfo.err = jpeg->std_error(&errors->pub);
    errors->pub.error_exit = raise_error;
    errors->pub.emit_message = fail_on_warning;
    if (setjmp(errors->jump)) {
        free(row);
        jpeg->destroy_decompress(&cinfo);
        return errors->message;
    }
    jpeg->create_decompress(&cinfo, JPEG_LIB_VERSION, sizeof(cinfo));
    jpeg->mem_src(&cinfo, data, (unsigned long)size);
    jpeg->read_header(&cinfo, TRUE);
    cinfo.out_color_space = gray ? JCS_GRAYSCALE : JCS_RGB;
    cinfo.dct_method = fast ? JDCT_IFAST : JDCT_ISLOW;
    cinfo.do_fancy_upsampling = fast ? FALSE : TRUE;
    jpeg->start_decompress(&cinfo);
    *image_width = cinfo.output_width;
    *image_height = cinfo.output_height;
    if (x + width > cinfo.output_width || y + height > cinfo.output_height) {
        problem = "region outside the image";
        goto done;
    }
    JDIMENSION left = x > MARGIN ? x - MARGIN : 0;
    JDIMENSION right = x + width + MARGIN < cinfo.output_width ? x + width + MARGIN
                                                              : cinfo.output_width;
    JDIMENSION window = right - left;
    if (left > 0 || window < cinfo.output_width)
        jpeg->crop_scanline(&cinfo, &left, &window); /* widened to iMCU boundaries */
    size_t stride = (size_t)cinfo.output_width * channels;
    row = malloc(stride * ROWS_PER_READ);
    if (row == NULL) {
        problem = "out of memory";
        goto done;
    }
    JDIMENSION first = y > MARGIN ? y - MARGIN : 0;
    if (first > 0)
        jpeg->skip_scanlines(&cinfo, first);
    JSAMPROW rows[ROWS_PER_READ];
    for (int i = 0; i < ROWS_PER_READ; i++)
        rows[i] = row + stride * i;
    JDIMENSION line = cinfo.output_scanline;
    while (line < y + height) {
        JDIMENSION wanted = y + height - line;
        JDIMENSION got = jpeg->read_scanlines(&cinfo, rows,
                                             wanted < ROWS_PER_READ ? wanted : ROWS_PER_READ);
        for (JDIMENSION i = 0; i < got; i++, line++)
            if (line >= y)
                copy_row(out + (size_t)(line - y) * width * step,
                         rows[i] + (size_t)(x - left) * channels, width, channels, step,
                         mirror);
        if (got == 0) {
            problem = "truncated image";
            goto done;
        }
    }
done:
    free(row);
    jpeg->abort_decompress(&cinfo);
    jpeg->destroy_decompress(&cinfo);
    return problem;
}

static PyObject *decode_crop(PyObject *self, PyObject *args) {
    Py_buffer data, out;
    unsigned int x, y, width, height;
    int gray, fast, mirror, step = 0;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*w*IIIIppp|i", &data, &out, &x, &y, &width, &height, &gray,
                          &fast, &mirror, &step))
        return NULL;
    int channels = gray ? 1 : 3;
    if (step == 0)
        step = channels;
    const char *bad = NULL;
    if (width == 0 || height == 0)
        bad = "empty region";
    else if (step < channels || (!gray && step != 3))
        bad = "step must be 3 for RGB, at least 1 for grey";
    else if ((size_t)out.len < ((size_t)width * height - 1) * step + channels)
        bad = "output buffer too small for the region";
    if (bad != NULL) {
        PyBuffer_Release(&data);
        PyBuffer_Release(&out);
        PyErr_SetString(PyExc_ValueError, bad);
        return NULL;
    }
    ErrorManager *errors = malloc(sizeof(ErrorManager));
    if (errors == NULL) {
        PyBuffer_Release(&data);
        PyBuffer_Release(&out);
        return PyErr_NoMemory();
    }
    const char *problem;
    JDIMENSION image_width = 0, image_height = 0;
    Py_BEGIN_ALLOW_THREADS
    problem = decode_region(data.buf, (size_t)data.len, out.buf, x, y, width, height, gray,
                            fast, mirror, step, errors, &image_width, &image_height);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&data);
    PyBuffer_Release(&out);
    if (problem != NULL) {
        PyErr_Format(PyExc_ValueError, "JPEG decoding failed: %s", problem);
        free(errors);
        return NULL;
    }
    free(errors);
    return Py_BuildValue("II", image_width, image_height);
}

/* split_quads(src, dst, count): src holds groups of 4 grey images as RGBA pixels
 * ([G, P, 4], G = ceil(count / 4)), dst receives the images one after the other
 * ([count, P]). */
static PyObject *split_quads(PyObject *self, PyObject *args) {
    Py_buffer src, dst;
    Py_ssize_t count;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*w*n", &src, &dst, &count))
        return NULL;
    size_t groups = count > 0 ? ((size_t)count + 3) / 4 : 0;
    size_t pixels = count > 0 ? (size_t)dst.len / (size_t)count : 0;
    if (count <= 0 || (size_t)dst.len != pixels * count || (size_t)src.len < groups * pixels * 4) {
        PyBuffer_Release(&src);
        PyBuffer_Release(&dst);
        PyErr_SetString(PyExc_ValueError, "split_quads: buffer sizes do not match the count");
        return NULL;
    }
    const unsigned char *in = src.buf;
    unsigned char *out = dst.buf;
    Py_BEGIN_ALLOW_THREADS
    for (size_t g = 0; g < groups; g++) {
        size_t images = (size_t)count - 4 * g < 4 ? (size_t)count - 4 * g : 4;
        const unsigned char *quad = in + g * pixels * 4;
        for (size_t k = 0; k < images; k++) {
            unsigned char *image = out + (4 * g + k) * pixels;
            for (size_t p = 0; p < pixels; p++)
                image[p] = quad[4 * p + k];
        }
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&src);
    PyBuffer_Release(&dst);
    Py_RETURN_NONE;
}

/* use_library(path): decode with the libjpeg-turbo at `path` from now on (dlopen'ed,
 * RTLD_LOCAL, never closed); use_library(None): the linked library again. On failure the
 * library in use is unchanged and OSError says why. */
static PyObject *use_library(PyObject *self, PyObject *path) {
    (void)self;
    if (path == Py_None) {
        in_use = &linked;
        Py_XSETREF(library_path, Py_NewRef(Py_None));
        Py_RETURN_NONE;
    }
#ifdef HAVE_DLOPEN
    PyObject *encoded = NULL;
    if (!PyUnicode_FSConverter(path, &encoded))
        return NULL;
    void *handle = dlopen(PyBytes_AS_STRING(encoded), RTLD_NOW | RTLD_LOCAL);
    Py_DECREF(encoded);
    if (handle == NULL) {
        PyErr_Format(PyExc_OSError, "cannot load %R: %s", path, dlerror());
        return NULL;
    }
    static const char *const names[] = {
        "jpeg_std_error",      "jpeg_CreateDecompress", "jpeg_mem_src",
        "jpeg_read_header",    "jpeg_start_decompress", "jpeg_crop_scanline",
        "jpeg_skip_scanlines", "jpeg_read_scanlines",   "jpeg_abort_decompress",
        "jpeg_destroy_decompress",
    };
    void *symbols[sizeof(names) / sizeof(names[0])];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        symbols[i] = dlsym(handle, names[i]);
        if (symbols[i] == NULL) {
            PyErr_Format(PyExc_OSError, "%R has no %s", path, names[i]);
            dlclose(handle);
            return NULL;
        }
    }
    JpegLibrary *loaded = malloc(sizeof(JpegLibrary));
    if (loaded == NULL) {
        dlclose(handle);
        return PyErr_NoMemory();
    }
    memcpy(loaded, symbols, sizeof(*loaded));
    in_use = loaded; /* the previous table stays valid for decodes still using it */
    Py_XSETREF(library_path, Py_NewRef(path));
    Py_RETURN_NONE;
#else
    PyErr_SetString(PyExc_OSError, "loading another libjpeg is not supported here");
    return NULL;
#endif
}

static PyObject *library(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    return Py_NewRef(library_path);
}

static PyMethodDef methods[] = {
    {"use_library", use_library, METH_O,
     "use_library(path or None): decode with the libjpeg-turbo at path (None: the linked one)."},
    {"library", library, METH_NOARGS,
     "library() -> the path given to use_library, or None for the linked libjpeg."},
    {"split_quads", split_quads, METH_VARARGS,
     "split_quads(src, dst, count): [G, P, 4] RGBA-packed grey images -> [count, P]."},
    {"decode_crop", decode_crop, METH_VARARGS,
     "decode_crop(jpeg, out, x, y, width, height, gray, fast, mirror, step=channels) -> "
     "(image width, height): decode the region into out (row-major, `step` bytes per pixel), "
     "mirrored left-right if asked."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_crop_decode", "Partial JPEG decoding with libjpeg-turbo.", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__crop_decode(void) {
#ifdef HAVE_SSSE3_MIRROR
    cpu_has_ssse3 = __builtin_cpu_supports("ssse3");
#endif
    library_path = Py_NewRef(Py_None);
    PyObject *created = PyModule_Create(&module);
    if (created != NULL && PyModule_AddIntConstant(created, "JPEG_LIB_VERSION", JPEG_LIB_VERSION)) {
        Py_DECREF(created);
        return NULL;
    }
    return created;
}
