// Do concurrent SGEMM calls from several threads into the OpenMP build of OpenBLAS give the
// results of a lone call? (Evidence for docs/robustness.md "Concurrent kernels".)
//   gcc -O1 Scripts/probes/openblas_threads.c -o /tmp/blas -I/usr/include/x86_64-linux-gnu/openblas-openmp -lopenblas -lpthread && /tmp/blas
#include <cblas.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define N 384
static float A[N*N], B[N*N], R[N*N];
static int bad;
static void *work(void *arg) {
    float *C = malloc(sizeof(float)*N*N);
    for (int r = 0; r < 40; r++) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, N, N, 1, A, N, B, N, 0, C, N);
        if (memcmp(C, R, sizeof R)) { __sync_fetch_and_add(&bad, 1); }
    }
    free(C); return NULL;
}
int main() {
    for (int i = 0; i < N*N; i++) { A[i] = (i % 17) * 0.1f - 0.8f; B[i] = (i % 13) * 0.07f - 0.4f; }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, N, N, 1, A, N, B, N, 0, R, N);
    pthread_t t[8];
    for (int i = 0; i < 8; i++) pthread_create(&t[i], NULL, work, NULL);
    for (int i = 0; i < 8; i++) pthread_join(t[i], NULL);
    printf("threads=%d mismatching results: %d of 320\n", openblas_get_num_threads(), bad);
    return 0;
}
