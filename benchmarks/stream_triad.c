/* STREAM triad reference for `npaccel bench` (benchmarks/stream_check.py builds and runs it).
 *
 * a[i] = b[i] + s * c[i] over float64 arrays of N elements, OpenMP-parallel with a static
 * schedule, arrays first touched by the same threads that use them (NUMA placement).
 * McCalpin's counting: 24 bytes per element (two reads, one write). Prints one JSON line:
 * the median and best of REPEATS timed calls, each after one untimed warm-up.
 *
 *   gcc -O3 -march=native -fopenmp stream_triad.c -o stream_triad
 *   OMP_NUM_THREADS=2 ./stream_triad 16777216 21
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

static int cmp(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s N REPEATS\n", argv[0]);
        return 2;
    }
    long n = atol(argv[1]);
    int repeats = atoi(argv[2]);
    if (n < 1 || repeats < 1) {
        fprintf(stderr, "N and REPEATS must be >= 1\n");
        return 2;
    }
    double *a = aligned_alloc(64, ((n * sizeof(double) + 63) / 64) * 64);
    double *b = aligned_alloc(64, ((n * sizeof(double) + 63) / 64) * 64);
    double *c = aligned_alloc(64, ((n * sizeof(double) + 63) / 64) * 64);
    double *t = malloc(repeats * sizeof(double));
    if (!a || !b || !c || !t) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    const double s = 3.0;
#pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) {
        a[i] = 0.0;
        b[i] = 1.0 + (double)(i % 7);
        c[i] = 2.0 + (double)(i % 5);
    }
#pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) a[i] = b[i] + s * c[i]; /* warm-up */
    for (int r = 0; r < repeats; r++) {
        double start = omp_get_wtime();
#pragma omp parallel for schedule(static)
        for (long i = 0; i < n; i++) a[i] = b[i] + s * c[i];
        t[r] = omp_get_wtime() - start;
    }
    for (long i = 0; i < n; i += n / 97 + 1) { /* check: no figure from a wrong answer */
        double want = 1.0 + (double)(i % 7) + s * (2.0 + (double)(i % 5));
        if (a[i] != want) {
            fprintf(stderr, "wrong result at %ld: %g != %g\n", i, a[i], want);
            return 1;
        }
    }
    qsort(t, repeats, sizeof(double), cmp);
    double median = t[repeats / 2], best = t[0];
    printf("{\"n\": %ld, \"threads\": %d, \"repeats\": %d, \"median_s\": %.9g, \"min_s\": %.9g, "
           "\"gbs_median\": %.6g, \"gbs_best\": %.6g}\n",
           n, omp_get_max_threads(), repeats, median, best, 24.0 * n / median / 1e9,
           24.0 * n / best / 1e9);
    free(a); free(b); free(c); free(t);
    return 0;
}
