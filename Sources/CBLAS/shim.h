// OpenBLAS (pkg-config `openblas`): CBLAS plus the thread-count controls of the pthread build.
// LAPACK is exported by the same library as Fortran symbols only (no LAPACKE); later issues
// declare the prototypes they need here (column-major, every argument by pointer).
#include <cblas.h>
