// OpenBLAS (pkg-config `openblas`): CBLAS plus the thread-count controls of the pthread build.
// LAPACK is exported by the same library as Fortran symbols only (no LAPACKE): the prototypes used are below.
#include <stddef.h>
#include <cblas.h>
// glibc's malloc_trim, for ProcessMemory: freed heap pages go back to the system before a new RSS peak starts.
#include <malloc.h>

// LAPACK (Fortran ABI: column-major, every argument by pointer, a hidden length after the character arguments).
void sgesdd_(const char *jobz, const int *m, const int *n, float *a, const int *lda, float *s, float *u, const int *ldu,
             float *vt, const int *ldvt, float *work, const int *lwork, int *iwork, int *info, size_t jobz_length);
void sgeqrf_(const int *m, const int *n, float *a, const int *lda, float *tau, float *work, const int *lwork, int *info);
void sorgqr_(const int *m, const int *n, const int *k, float *a, const int *lda, const float *tau, float *work,
             const int *lwork, int *info);
