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

/* Returns NULL on success, else a static or error-manager message. */
static const char *decode_region(const unsigned char *data, size_t size, unsigned char *out,
                                 JDIMENSION x, JDIMENSION y, JDIMENSION width,
                                 JDIMENSION height, int gray, int fast, ErrorManager *errors,
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
                memcpy(out + (size_t)(line - y) * width * channels,
                       rows[i] + (size_t)(x - left) * channels, (size_t)width * channels);
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
    int gray, fast;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*w*IIIIpp", &data, &out, &x, &y, &width, &height, &gray,
                          &fast))
        return NULL;
    int channels = gray ? 1 : 3;
    if ((size_t)out.len < (size_t)width * height * channels) {
        PyBuffer_Release(&data);
        PyBuffer_Release(&out);
        PyErr_SetString(PyExc_ValueError, "output buffer too small for the region");
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
                            fast, errors, &image_width, &image_height);
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

static PyMethodDef methods[] = {
    {"decode_crop", decode_crop, METH_VARARGS,
     "decode_crop(jpeg, out, x, y, width, height, gray, fast) -> (image width, height): "
     "decode the region into out ([height, width, 3] RGB or [height, width] grey, C order)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_crop_decode", "Partial JPEG decoding with libjpeg-turbo.", -1,
    methods,
};

PyMODINIT_FUNC PyInit__crop_decode(void) { return PyModule_Create(&module); }
