/* Decoding a rectangle of a JPEG (see _jpeg_rows.h).
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
 * The libjpeg calls go through a table: by default the library linked at build time (the
 * system's), or another libjpeg-turbo loaded by use_jpeg_library (epic-ar can point it at
 * the 3.x build that Pillow's wheels bundle).
 */
#include "_jpeg_rows.h"

#include <stdlib.h>
#include <string.h>

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
#define ROW_PADDING 64 /* the bytes RowSink promises past a region's end */

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
/* The library in use. A decode reads the pointer once, so switching (to a table that is
 * never freed) cannot mix two libraries in one decode running on another thread. */
static const JpegLibrary *volatile in_use = &linked;

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

const char *decode_rows(const unsigned char *data, size_t size, JDIMENSION x, JDIMENSION y,
                        JDIMENSION width, JDIMENSION height, int gray, int fast,
                        ErrorManager *errors, JDIMENSION *image_width, JDIMENSION *image_height,
                        RowSink *sink) {
    const JpegLibrary *const jpeg = in_use;
    struct jpeg_decompress_struct cinfo;
    unsigned char *volatile buffer = NULL;
    const char *volatile problem = NULL;
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
    /* Written so that no sum can wrap around. */
    if (width > cinfo.output_width || x > cinfo.output_width - width ||
        height > cinfo.output_height || y > cinfo.output_height - height) {
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
    buffer = malloc(stride * ROWS_PER_READ + ROW_PADDING);
    if (buffer == NULL) {
        problem = "out of memory";
        goto done;
    }
    memset(buffer + stride * ROWS_PER_READ, 0, ROW_PADDING);
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

const char *decode_region_copied(const unsigned char *data, size_t size, unsigned char *out,
                                 JDIMENSION x, JDIMENSION y, JDIMENSION width, JDIMENSION height,
                                 int gray, int fast, int mirror, int step, ErrorManager *errors,
                                 JDIMENSION *image_width, JDIMENSION *image_height) {
    CopySink sink = {{copy_take}, out, width, gray ? 1 : 3, step, mirror};
    return decode_rows(data, size, x, y, width, height, gray, fast, errors, image_width,
                       image_height, &sink.base);
}

LibraryOutcome use_jpeg_library(const char *path, const char **detail) {
    *detail = NULL;
    if (path == NULL) {
        in_use = &linked;
        return LIBRARY_LOADED;
    }
#ifdef HAVE_DLOPEN
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
        *detail = dlerror();
        return LIBRARY_UNLOADABLE;
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
            *detail = names[i];
            dlclose(handle);
            return LIBRARY_INCOMPLETE;
        }
    }
    JpegLibrary *loaded = malloc(sizeof(JpegLibrary));
    if (loaded == NULL) {
        dlclose(handle);
        return LIBRARY_NO_MEMORY;
    }
    memcpy(loaded, symbols, sizeof(*loaded));
    in_use = loaded; /* the previous table stays valid for decodes still using it */
    return LIBRARY_LOADED;
#else
    return LIBRARY_UNSUPPORTED;
#endif
}
