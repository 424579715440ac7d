#pragma once
#include <oneapi/dnnl/dnnl.h>
/* DNNL_MEMORY_ALLOCATE is a macro that Swift cannot import. */
static inline void *cdnnl_memory_allocate(void) { return DNNL_MEMORY_ALLOCATE; }
/* OpenMP thread control (libgomp is shared by oneDNN and the OpenMP build of OpenBLAS). */
void omp_set_num_threads(int);
int omp_get_max_threads(void);
