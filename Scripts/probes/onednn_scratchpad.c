// Does a oneDNN primitive created on one thread find its library-mode scratchpad on another?
// (Evidence for docs/robustness.md "Concurrent kernels".) Build and run:
//   gcc -O1 -g Scripts/probes/onednn_scratchpad.c -o /tmp/probe -ldnnl -lpthread && /tmp/probe
//   gcc -O1 -g -fsanitize=address Scripts/probes/onednn_scratchpad.c -o /tmp/probe-asan -ldnnl -lpthread && /tmp/probe-asan small
// With Debian's libdnnl2 2.6.3 the first two modes crash (SIGSEGV; ASan: heap-buffer-overflow in
// the memset of oneDNN's im2col), the third runs.
// ./probe            library scratchpad: create on thread A, execute on thread B
// ./probe small      same, but thread B first creates (and runs) a small primitive of its own
// ./probe user       user scratchpad (DNNL_ARG_SCRATCHPAD passed by the caller)
#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define CHECK(x) do { dnnl_status_t s_ = (x); if (s_ != dnnl_success) { printf("fail %s: %d\n", #x, s_); exit(1);} } while (0)
static dnnl_engine_t engine; static dnnl_stream_t stream;
static int user_mode, small_first;
typedef struct { dnnl_primitive_t p; dnnl_memory_t s, w, d, sc; float *src, *wei, *dst; } conv_t;
static conv_t big;
static conv_t make(int c, int h) {
    int N = 2, O = 32, K = 3;
    conv_t r; memset(&r, 0, sizeof r);
    dnnl_memory_desc_t s, w, d;
    dnnl_dims_t sd = {N, c, h, h}, wd = {O, c, K, K}, dd = {N, O, h, h};
    CHECK(dnnl_memory_desc_init_by_tag(&s, 4, sd, dnnl_f32, dnnl_nchw));
    CHECK(dnnl_memory_desc_init_by_tag(&w, 4, wd, dnnl_f32, dnnl_oihw));
    CHECK(dnnl_memory_desc_init_by_tag(&d, 4, dd, dnnl_f32, dnnl_nchw));
    dnnl_dims_t st = {1, 1}, pad = {1, 1};
    dnnl_convolution_desc_t cd;
    CHECK(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct, &s, &w, NULL, &d, st, pad, pad));
    dnnl_primitive_attr_t attr; CHECK(dnnl_primitive_attr_create(&attr));
    CHECK(dnnl_primitive_attr_set_scratchpad_mode(attr, user_mode ? dnnl_scratchpad_mode_user : dnnl_scratchpad_mode_library));
    dnnl_primitive_desc_t pd; CHECK(dnnl_primitive_desc_create(&pd, &cd, attr, engine, NULL));
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t scratch = smd ? dnnl_memory_desc_get_size(smd) : 0;
    const char *impl; dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    printf("  created c=%d h=%d: %s, user-mode scratchpad %zu bytes\n", c, h, impl, scratch);
    CHECK(dnnl_primitive_create(&r.p, pd));
    r.src = calloc(N * c * h * h, 4); r.wei = calloc(O * c * K * K, 4); r.dst = calloc(N * O * h * h, 4);
    CHECK(dnnl_memory_create(&r.s, &s, engine, r.src)); CHECK(dnnl_memory_create(&r.w, &w, engine, r.wei));
    CHECK(dnnl_memory_create(&r.d, &d, engine, r.dst));
    if (user_mode && scratch) CHECK(dnnl_memory_create(&r.sc, smd, engine, DNNL_MEMORY_ALLOCATE));
    return r;
}
static void run(conv_t *c) {
    dnnl_exec_arg_t a[4] = {{DNNL_ARG_SRC, c->s}, {DNNL_ARG_WEIGHTS, c->w}, {DNNL_ARG_DST, c->d}, {DNNL_ARG_SCRATCHPAD, c->sc}};
    CHECK(dnnl_primitive_execute(c->p, stream, c->sc ? 4 : 3, a)); CHECK(dnnl_stream_wait(stream));
}
static void *creator(void *arg) { big = make(32, 64); run(&big); printf("  executed on the creating thread: ok\n"); return NULL; }
static void *runner(void *arg) {
    if (small_first) { conv_t s = make(1, 4); run(&s); }
    printf("  executing on another thread...\n"); fflush(stdout);
    run(&big); printf("  executed on another thread: ok\n"); return NULL;
}
int main(int argc, char **argv) {
    user_mode = argc > 1 && !strcmp(argv[1], "user"); small_first = argc > 1 && !strcmp(argv[1], "small");
    CHECK(dnnl_engine_create(&engine, dnnl_cpu, 0)); CHECK(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags));
    pthread_t t;
    pthread_create(&t, NULL, creator, NULL); pthread_join(t, NULL);
    pthread_create(&t, NULL, runner, NULL); pthread_join(t, NULL);
    void *probe = malloc(1 << 20); free(probe);  // give glibc a chance to notice a corrupted heap
    printf("  done\n");
    return 0;
}
