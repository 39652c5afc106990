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

#include "_pixel_rows.h"

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

/* Where the decoded rows of a region go: `take` receives `count` rows from row `index` of
 * the region on (0 is its top row), each from the region's first pixel and readable
 * RESIZE_ROW_PADDING bytes past the region's end. */
typedef struct RowSink {
    void (*take)(struct RowSink *sink, JDIMENSION index, const unsigned char *const *rows,
                 JDIMENSION count);
} RowSink;

/* Returns NULL on success, else a static or error-manager message. */
static const char *decode_rows(const unsigned char *data, size_t size, JDIMENSION x,
                               JDIMENSION y, JDIMENSION width, JDIMENSION height, int gray,
                               int fast, ErrorManager *errors, JDIMENSION *image_width,
                               JDIMENSION *image_height, RowSink *sink) {
    const JpegLibrary *const jpeg = in_use;
    struct jpeg_decompress_struct cinfo;
    unsigned char *volatile buffer = NULL;
    const char *problem = NULL;
    int channels = gray ? 1 : 3;

    cinfo.err = jpeg->std_error(&errors->pub);
    errors->pub.error_exit = raise_error;
    errors->pub.emit_message = fail_on_warning;
    if (setjmp(errors->jump)) {
        free(buffer);
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
    buffer = malloc(stride * ROWS_PER_READ + RESIZE_ROW_PADDING);
    if (buffer == NULL) {
        problem = "out of memory";
        goto done;
    }
    memset(buffer + stride * ROWS_PER_READ, 0, RESIZE_ROW_PADDING);
    JDIMENSION first = y > MARGIN ? y - MARGIN : 0;
    if (first > 0)
        jpeg->skip_scanlines(&cinfo, first);
    JSAMPROW rows[ROWS_PER_READ];
    const unsigned char *region[ROWS_PER_READ];
    for (int i = 0; i < ROWS_PER_READ; i++)
        rows[i] = buffer + stride * i;
    JDIMENSION line = cinfo.output_scanline;
    while (line < y + height) {
        /* A block of rows for the sink; libjpeg hands out a row group or so per call. */
        JDIMENSION wanted = y + height - line, got = 0;
        if (wanted > ROWS_PER_READ)
            wanted = ROWS_PER_READ;
        while (got < wanted) {
            JDIMENSION read = jpeg->read_scanlines(&cinfo, rows + got, wanted - got);
            if (read == 0) {
                problem = "truncated image";
                goto done;
            }
            got += read;
        }
        JDIMENSION above = line < y ? y - line : 0; /* the margin rows above the region */
        for (JDIMENSION i = above; i < got; i++)
            region[i - above] = rows[i] + (size_t)(x - left) * channels;
        if (got > above)
            sink->take(sink, line + above - y, region, got - above);
        line += got;
    }
done:
    free(buffer);
    jpeg->abort_decompress(&cinfo);
    jpeg->destroy_decompress(&cinfo);
    return problem;
}

/* Rows copied into a [height, width, step] buffer, mirrored if asked. */
typedef struct {
    RowSink base;
    unsigned char *out;
    size_t width;
    int channels, step, mirror;
} CopySink;

static void copy_take(RowSink *sink, JDIMENSION index, const unsigned char *const *rows,
                      JDIMENSION count) {
    CopySink *copy = (CopySink *)sink;
    size_t bytes = copy->width * (size_t)copy->step;
    for (JDIMENSION i = 0; i < count; i++)
        copy_row(copy->out + (size_t)(index + i) * bytes, rows[i], copy->width, copy->channels,
                 copy->step, copy->mirror);
}

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
    CopySink sink = {{copy_take}, out.buf, width, channels, step, mirror};
    problem = decode_rows(data.buf, (size_t)data.len, x, y, width, height, gray, fast, errors,
                          &image_width, &image_height, &sink.base);
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

/* What resizing a sample's crops needs, shared by its frames: the taps of both axes and,
 * when the height changes, the rows resized across (with zeroed spare rows after them,
 * as the column pass reads whole pairs of taps). */
typedef struct {
    ResizeTaps across, down;
    int resize_across, resize_down;
    size_t stride; /* bytes of an output row */
    unsigned char *rows;
} ResizePlan;

static void free_plan(ResizePlan *plan) {
    resize_taps_free(&plan->across);
    resize_taps_free(&plan->down);
    free(plan->rows);
}

/* Returns 0, or -1 when out of memory (the plan is then freed). */
static int plan_resize(ResizePlan *plan, int width, int height, int side, int mirror) {
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

/* Decodes `region` of a JPEG into `out` ([side, side, 3]) as `plan` resizes it. Returns
 * NULL on success, else a message. */
static const char *decode_resized(const unsigned char *data, size_t size, unsigned char *out,
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

static void release_buffers(Py_buffer *buffers, Py_ssize_t count) {
    for (Py_ssize_t i = 0; i < count; i++)
        PyBuffer_Release(&buffers[i]);
    free(buffers);
}

/* The frames' image sizes as a list of (width, height), or NULL with an exception set. */
static PyObject *size_list(const JDIMENSION *sizes, Py_ssize_t count) {
    PyObject *list = PyList_New(count);
    for (Py_ssize_t i = 0; list != NULL && i < count; i++) {
        PyObject *pair = Py_BuildValue("II", sizes[2 * i], sizes[2 * i + 1]);
        if (pair == NULL)
            Py_CLEAR(list);
        else
            PyList_SET_ITEM(list, i, pair);
    }
    return list;
}

static PyObject *decode_crops_resized(PyObject *self, PyObject *args) {
    PyObject *jpegs, *sequence, *result = NULL;
    Py_buffer out;
    unsigned int x, y, width, height, side;
    int fast, mirror;
    (void)self;
    if (!PyArg_ParseTuple(args, "Ow*IIIIIpp", &jpegs, &out, &x, &y, &width, &height, &side,
                          &fast, &mirror))
        return NULL;
    sequence = PySequence_Fast(jpegs, "jpegs must be a sequence of bytes");
    if (sequence == NULL) {
        PyBuffer_Release(&out);
        return NULL;
    }
    Py_ssize_t count = PySequence_Fast_GET_SIZE(sequence);
    size_t frame_bytes = (size_t)side * side * 3;
    if (count == 0 || width == 0 || height == 0 || side == 0 || side > 65536) {
        PyErr_SetString(PyExc_ValueError, "no frames, or an empty region or size");
        goto finish;
    }
    if ((size_t)out.len < frame_bytes * (size_t)count) {
        PyErr_SetString(PyExc_ValueError, "output buffer too small for the frames");
        goto finish;
    }
    Py_buffer *data = calloc((size_t)count, sizeof(Py_buffer));
    JDIMENSION *sizes = calloc((size_t)count * 2, sizeof(JDIMENSION));
    ErrorManager *errors = malloc(sizeof(ErrorManager));
    if (data == NULL || sizes == NULL || errors == NULL) {
        free(data), free(sizes), free(errors);
        PyErr_NoMemory();
        goto finish;
    }
    Py_ssize_t held = 0;
    for (; held < count; held++)
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(sequence, held), &data[held],
                               PyBUF_SIMPLE) < 0)
            break;
    const char *problem = NULL;
    Py_ssize_t failed = -1;
    if (held == count) {
        Py_BEGIN_ALLOW_THREADS
        ResizePlan plan;
        int planned = plan_resize(&plan, (int)width, (int)height, (int)side, mirror) == 0;
        if (!planned)
            problem = "out of memory";
        for (Py_ssize_t i = 0; problem == NULL && i < count; i++) {
            problem = decode_resized(data[i].buf, (size_t)data[i].len,
                                     (unsigned char *)out.buf + frame_bytes * (size_t)i, x, y,
                                     width, height, &plan, fast, mirror, errors, &sizes[2 * i],
                                     &sizes[2 * i + 1]);
            failed = problem != NULL ? i : -1;
        }
        if (planned)
            free_plan(&plan);
        Py_END_ALLOW_THREADS
        if (problem == NULL)
            result = size_list(sizes, count);
        else if (failed < 0)
            PyErr_NoMemory();
        else
            /* (message, frame index): the caller names the frame in its own words. */
            PyErr_SetObject(PyExc_ValueError,
                            Py_BuildValue("(Nn)",
                                          PyUnicode_FromFormat("JPEG decoding failed: %s",
                                                               problem),
                                          failed));
    }
    release_buffers(data, held);
    free(sizes);
    free(errors);
finish:
    Py_DECREF(sequence);
    PyBuffer_Release(&out);
    return result;
}

/* use_simd(flag): the SIMD row kernels (where the CPU has them) or the plain C ones. */
static PyObject *use_simd(PyObject *self, PyObject *flag) {
    (void)self;
    int allowed = PyObject_IsTrue(flag);
    if (allowed < 0)
        return NULL;
    choose_row_kernels(allowed);
    Py_RETURN_NONE;
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
    {"use_simd", use_simd, METH_O,
     "use_simd(flag): SIMD row kernels where the CPU has them (True, the default) or plain C."},
    {"decode_crops_resized", decode_crops_resized, METH_VARARGS,
     "decode_crops_resized(jpegs, out, x, y, width, height, size, fast, mirror) -> [(image "
     "width, height)]: the RGB region of each JPEG resized to size x size (antialiased "
     "bilinear, torch's uint8 arithmetic) into out ([F, size, size, 3]), mirrored left-right "
     "if asked. A failure raises ValueError((message, frame index))."},
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
    choose_row_kernels(1);
    library_path = Py_NewRef(Py_None);
    PyObject *created = PyModule_Create(&module);
    if (created != NULL && PyModule_AddIntConstant(created, "JPEG_LIB_VERSION", JPEG_LIB_VERSION)) {
        Py_DECREF(created);
        return NULL;
    }
    return created;
}
