// Open MPI's C API for Swift. MPI's predefined handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, ...)
// are macros over global objects that Swift cannot import, so these inline functions return them.
#ifndef CMPI_SHIM_H
#define CMPI_SHIM_H
#include <mpi.h>

static inline MPI_Comm gk_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype gk_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype gk_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype gk_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Datatype gk_mpi_int64(void) { return MPI_INT64_T; }
static inline MPI_Op gk_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op gk_mpi_max(void) { return MPI_MAX; }
static inline void *gk_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline int gk_mpi_thread_serialized(void) { return MPI_THREAD_SERIALIZED; }
static inline int gk_mpi_success(void) { return MPI_SUCCESS; }
static inline MPI_Errhandler gk_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }

#endif
