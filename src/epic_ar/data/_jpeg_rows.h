/* Decoding a rectangle of a JPEG, row block by row block, with libjpeg-turbo's partial
 * decompression, through a table of libjpeg functions that can point at another
 * libjpeg-turbo than the one linked at build time. */
#ifndef EPIC_AR_JPEG_ROWS_H
#define EPIC_AR_JPEG_ROWS_H

#include <setjmp.h>
#include <stddef.h>
#include <stdio.h>

#include <jpeglib.h>

/* The largest side a JPEG can have: regions and sizes beyond it are refused early. */
#define JPEG_SIDE_LIMIT 65535

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
} ErrorManager;

/* Where the decoded rows of a region go: `take` receives `count` rows from row `index` of
 * the region on (0 is its top row), each from the region's first pixel, readable 64 bytes
 * past the region's end. */
typedef struct RowSink {
    void (*take)(struct RowSink *sink, JDIMENSION index, const unsigned char *const *rows,
                 JDIMENSION count);
} RowSink;

/* Decodes rows y .. y + height - 1, columns x .. x + width - 1 (RGB, or grey if `gray`)
 * into `sink`, and stores the image's size. Returns NULL on success, else a static or
 * error-manager message. */
const char *decode_rows(const unsigned char *data, size_t size, JDIMENSION x, JDIMENSION y,
                        JDIMENSION width, JDIMENSION height, int gray, int fast,
                        ErrorManager *errors, JDIMENSION *image_width, JDIMENSION *image_height,
                        RowSink *sink);

/* The same into out ([height, width] pixels of `step` bytes), mirrored if asked. */
const char *decode_region_copied(const unsigned char *data, size_t size, unsigned char *out,
                                 JDIMENSION x, JDIMENSION y, JDIMENSION width, JDIMENSION height,
                                 int gray, int fast, int mirror, int step, ErrorManager *errors,
                                 JDIMENSION *image_width, JDIMENSION *image_height);

typedef enum { LIBRARY_LOADED, LIBRARY_UNLOADABLE, LIBRARY_INCOMPLETE, LIBRARY_NO_MEMORY,
               LIBRARY_UNSUPPORTED } LibraryOutcome;

/* Decodes with the libjpeg-turbo at `path` from now on (dlopen'ed, RTLD_LOCAL, never
 * closed), or with the linked one again when `path` is NULL. On failure the library in
 * use is unchanged and `detail` says why (dlerror's text, or the missing function). */
LibraryOutcome use_jpeg_library(const char *path, const char **detail);

#endif
