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
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#ifndef LIBJPEG_TURBO_VERSION
#error "partial decoding needs libjpeg-turbo (jpeg_crop_scanline)"
#endif

#define MARGIN 8
#define ROWS_PER_READ 16

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

/* Copies one row of the crop out of the scanline buffer, `step` bytes per output pixel
 * (step 4 for grey frames packed as the channels of one RGBA image, ready for the resize),
 * mirrored if asked: the random flip and the packing cost nothing extra here. */
static void copy_row(unsigned char *out, const unsigned char *in, JDIMENSION width, int channels,
                     int step, int mirror) {
    if (!mirror && step == channels) {
        memcpy(out, in, (size_t)width * channels);
    } else if (channels == 1) {
        for (JDIMENSION p = 0; p < width; p++)
            out[(size_t)(mirror ? width - 1 - p : p) * step] = in[p];
    } else {
        for (JDIMENSION p = 0; p < width; p++) {
            unsigned char *pixel = out + (size_t)(mirror ? width - 1 - p : p) * step;
            pixel[0] = in[3 * p];
            pixel[1] = in[3 * p + 1];
            pixel[2] = in[3 * p + 2];
        }
    }
}

/* Returns NULL on success, else a static or error-manager message. */
static const char *decode_region(const unsigned char *data, size_t size, unsigned char *out,
                                 JDIMENSION x, JDIMENSION y, JDIMENSION width,
                                 JDIMENSION height, int gray, int fast, int mirror,
                                 int step, ErrorManager *errors,
                                 JDIMENSION *image_width, JDIMENSION *image_height) {
    struct jpeg_decompress_struct cinfo;
    unsigned char *volatile row = NULL;
    const char *problem = NULL;
    int channels = gray ? 1 : 3;

    cinfo.err = jpeg_std_error(&errors->pub);
    errors->pub.error_exit = raise_error;
    errors->pub.emit_message = fail_on_warning;
    if (setjmp(errors->jump)) {
        free(row);
        jpeg_destroy_decompress(&cinfo);
        return errors->message;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    cinfo.out_color_space = gray ? JCS_GRAYSCALE : JCS_RGB;
    cinfo.dct_method = fast ? JDCT_IFAST : JDCT_ISLOW;
    cinfo.do_fancy_upsampling = fast ? FALSE : TRUE;
    jpeg_start_decompress(&cinfo);
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
        jpeg_crop_scanline(&cinfo, &left, &window); /* widened to iMCU boundaries */
    size_t stride = (size_t)cinfo.output_width * channels;
    row = malloc(stride * ROWS_PER_READ);
    if (row == NULL) {
        problem = "out of memory";
        goto done;
    }
    JDIMENSION first = y > MARGIN ? y - MARGIN : 0;
    if (first > 0)
        jpeg_skip_scanlines(&cinfo, first);
    JSAMPROW rows[ROWS_PER_READ];
    for (int i = 0; i < ROWS_PER_READ; i++)
        rows[i] = row + stride * i;
    JDIMENSION line = cinfo.output_scanline;
    while (line < y + height) {
        JDIMENSION wanted = y + height - line;
        JDIMENSION got = jpeg_read_scanlines(&cinfo, rows,
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
    jpeg_abort_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
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

static PyMethodDef methods[] = {
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

PyMODINIT_FUNC PyInit__crop_decode(void) { return PyModule_Create(&module); }
