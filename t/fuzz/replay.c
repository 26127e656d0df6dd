/*
 * Runs a fuzz target over every file of its seed corpus, as a TAP test, so
 * the corpus (every crash ever found among it) is replayed by make check
 * with any compiler, not only under libFuzzer.
 */
#include "config.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

static unsigned char *
slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    size_t cap = 0, n = 0;

    if (f == NULL) {
        return NULL;
    }
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            buf = realloc(buf, cap);
            if (buf == NULL) {
                fclose(f);
                return NULL;
            }
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) {
            break;
        }
    }
    fclose(f);
    *len = n;
    return buf;
}

int
main(void)
{
    const char *dir = WSG_CORPUS_DIR;
    DIR *d = opendir(dir);
    char *names[4096];
    size_t n = 0;

    if (d == NULL) {
        printf("1..1\nnot ok 1 - corpus %s cannot be opened\n", dir);
        return 1;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 4096) {
        if (e->d_name[0] != '.') {
            names[n++] = strdup(e->d_name);
        }
    }
    closedir(d);
    qsort(names, n, sizeof(names[0]), name_cmp);
    printf("1..%zu\n", n);
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        size_t len = 0;
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        unsigned char *buf = slurp(path, &len);
        if (buf == NULL) {
            printf("not ok %zu - %s cannot be read\n", i + 1, names[i]);
            continue;
        }
        /* a crash or sanitizer abort fails the whole test program */
        LLVMFuzzerTestOneInput(buf, len);
        printf("ok %zu - %s\n", i + 1, names[i]);
        free(buf);
        free(names[i]);
    }
    return 0;
}
