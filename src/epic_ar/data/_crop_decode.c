/* The Python module of the partial-decoding extension: decoding a region of a JPEG
 * (_jpeg_rows.c), RGB regions resized as they are decoded (_resize_rgb.c), the unpacking
 * of grey frames resized four at a time, and the choice of libjpeg and of SIMD kernels.
 * Every decode releases the GIL.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdlib.h>
#include <string.h>

#include "_jpeg_rows.h"
#include "_pixel_rows.h"
#include "_resize_rgb.h"

static PyObject *library_path; /* the file of the libjpeg in use (None: the linked one) */

/* NULL if a width x height region at (x, y) and an output side can exist, else why not
 * (arguments parsed with "I" wrap negative numbers around to huge ones). */
static const char *region_problem(unsigned int x, unsigned int y, unsigned int width,
                                  unsigned int height, unsigned int side) {
    if (width == 0 || height == 0 || side == 0)
        return "empty region or size";
    if (width > JPEG_SIDE_LIMIT || x > JPEG_SIDE_LIMIT - width || height > JPEG_SIDE_LIMIT ||
        y > JPEG_SIDE_LIMIT - height || side > JPEG_SIDE_LIMIT)
        return "region or size outside any JPEG (negative, or beyond 65535)";
    return NULL;
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
    const char *bad = region_problem(x, y, width, height, 1);
    if (bad == NULL && (step < channels || (!gray && step != 3)))
        bad = "step must be 3 for RGB, at least 1 for grey";
    else if (bad == NULL && (size_t)out.len < ((size_t)width * height - 1) * step + channels)
        bad = "output buffer too small for the region";
    ErrorManager *errors = bad == NULL ? malloc(sizeof(ErrorManager)) : NULL;
    const char *problem = NULL;
    JDIMENSION image_width = 0, image_height = 0;
    if (errors != NULL) {
        Py_BEGIN_ALLOW_THREADS
        problem = decode_region_copied(data.buf, (size_t)data.len, out.buf, x, y, width, height,
                                       gray, fast, mirror, step, errors, &image_width,
                                       &image_height);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&data);
    PyBuffer_Release(&out);
    PyObject *result = NULL;
    if (bad != NULL)
        PyErr_SetString(PyExc_ValueError, bad);
    else if (errors == NULL)
        PyErr_NoMemory();
    else if (problem != NULL)
        PyErr_Format(PyExc_ValueError, "JPEG decoding failed: %s", problem);
    else
        result = Py_BuildValue("II", image_width, image_height);
    free(errors);
    return result;
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

/* ValueError((message, frame index)): the caller names the frame in its own words. */
static void set_frame_error(const char *problem, Py_ssize_t frame) {
    PyObject *value = Py_BuildValue("(Nn)", PyUnicode_FromFormat("JPEG decoding failed: %s",
                                                                 problem), frame);
    if (value != NULL) {
        PyErr_SetObject(PyExc_ValueError, value);
        Py_DECREF(value);
    }
}

/* Decodes every frame with one plan; the GIL is released. Returns NULL, or the message of
 * the first failure, whose frame goes to *failed (-1: the plan could not be allocated). */
static const char *decode_all_resized(const Py_buffer *data, Py_ssize_t count,
                                      unsigned char *out, unsigned int x, unsigned int y,
                                      unsigned int width, unsigned int height,
                                      unsigned int side, int fast, int mirror,
                                      ErrorManager *errors, JDIMENSION *sizes,
                                      Py_ssize_t *failed) {
    const char *problem = NULL;
    size_t frame_bytes = (size_t)side * side * 3;
    ResizePlan plan;
    *failed = -1;
    if (plan_resize(&plan, (int)width, (int)height, (int)side, mirror) != 0)
        return "out of memory";
    for (Py_ssize_t i = 0; problem == NULL && i < count; i++) {
        problem = decode_region_resized(data[i].buf, (size_t)data[i].len,
                                        out + frame_bytes * (size_t)i, x, y, width, height,
                                        &plan, fast, mirror, errors, &sizes[2 * i],
                                        &sizes[2 * i + 1]);
        if (problem != NULL)
            *failed = i;
    }
    free_plan(&plan);
    return problem;
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
    Py_ssize_t count = PySequence_Fast_GET_SIZE(sequence), held = 0;
    const char *bad = count == 0 ? "no frames" : region_problem(x, y, width, height, side);
    if (bad == NULL && (size_t)out.len < (size_t)side * side * 3 * (size_t)count)
        bad = "output buffer too small for the frames";
    Py_buffer *data = bad == NULL ? calloc((size_t)count, sizeof(Py_buffer)) : NULL;
    JDIMENSION *sizes = bad == NULL ? calloc((size_t)count * 2, sizeof(JDIMENSION)) : NULL;
    ErrorManager *errors = bad == NULL ? malloc(sizeof(ErrorManager)) : NULL;
    if (bad != NULL)
        PyErr_SetString(PyExc_ValueError, bad);
    else if (data == NULL || sizes == NULL || errors == NULL)
        PyErr_NoMemory();
    else {
        while (held < count && PyObject_GetBuffer(PySequence_Fast_GET_ITEM(sequence, held),
                                                  &data[held], PyBUF_SIMPLE) == 0)
            held++;
    }
    if (held == count && data != NULL && sizes != NULL && errors != NULL) {
        const char *problem;
        Py_ssize_t failed;
        Py_BEGIN_ALLOW_THREADS
        problem = decode_all_resized(data, count, out.buf, x, y, width, height, side, fast,
                                     mirror, errors, sizes, &failed);
        Py_END_ALLOW_THREADS
        if (problem == NULL)
            result = size_list(sizes, count);
        else if (failed < 0)
            PyErr_NoMemory();
        else
            set_frame_error(problem, failed);
    }
    for (Py_ssize_t i = 0; i < held; i++)
        PyBuffer_Release(&data[i]);
    free(data);
    free(sizes);
    free(errors);
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
    PyObject *encoded = NULL;
    if (path != Py_None && !PyUnicode_FSConverter(path, &encoded))
        return NULL;
    const char *detail;
    LibraryOutcome outcome =
        use_jpeg_library(encoded != NULL ? PyBytes_AS_STRING(encoded) : NULL, &detail);
    Py_XDECREF(encoded);
    switch (outcome) {
    case LIBRARY_LOADED:
        Py_XSETREF(library_path, Py_NewRef(path));
        Py_RETURN_NONE;
    case LIBRARY_UNLOADABLE:
        return PyErr_Format(PyExc_OSError, "cannot load %R: %s", path, detail);
    case LIBRARY_INCOMPLETE:
        return PyErr_Format(PyExc_OSError, "%R has no %s", path, detail);
    case LIBRARY_NO_MEMORY:
        return PyErr_NoMemory();
    default:
        PyErr_SetString(PyExc_OSError, "loading another libjpeg is not supported here");
        return NULL;
    }
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
