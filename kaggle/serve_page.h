/* kaggle/serve_page: the files of kaggle/serve_page/ (the drawing page), embedded in the binary at build time by
 * kaggle/embed_page.cmake into serve_page_data.c. Only these paths exist: the server has no file system behind it. */
#ifndef KG_SERVE_PAGE_H
#define KG_SERVE_PAGE_H

#include <stddef.h>

typedef struct kg_serve_file {
    const char *path;         /* "/index.html" */
    const char *type;         /* Content-Type */
    const unsigned char *data;
    size_t len;
} kg_serve_file;

extern const kg_serve_file kg_serve_files[];
extern const int kg_serve_n_files;

#endif
