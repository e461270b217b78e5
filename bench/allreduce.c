/*
 * The C peer of `deno task bench:dist`: MPICH's MPI_Allreduce, in place, on
 * float32 buffers of the sizes the Deno ranks time, on the calling thread,
 * medians of `reps` after a barrier each. Rank 0 prints one JSON line.
 *
 *   mpicc -O2 -o allreduce bench/allreduce.c
 *   mpiexec.mpich -n 2 ./allreduce 7
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  int provided, rank;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  int reps = argc > 1 ? atoi(argv[1]) : 7;
  const int sizes[] = {1 << 18, 1 << 20, 1 << 24};
  double *ms = malloc(sizeof(double) * reps);
  if (rank == 0) printf("ALLREDUCE_C [");
  for (int s = 0; s < 3; s++) {
    int n = sizes[s];
    float *buffer = malloc(sizeof(float) * n);
    for (int i = 0; i < n; i++) buffer[i] = 1 + rank;
    MPI_Allreduce(MPI_IN_PLACE, buffer, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD); /* warm-up */
    for (int k = 0; k < reps; k++) {
      MPI_Barrier(MPI_COMM_WORLD);
      double start = MPI_Wtime();
      MPI_Allreduce(MPI_IN_PLACE, buffer, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
      ms[k] = (MPI_Wtime() - start) * 1e3;
    }
    qsort(ms, reps, sizeof(double), by_value);
    if (rank == 0) printf("%s{\"bytes\":%d,\"ms\":%.4f}", s ? "," : "", n * 4, ms[reps / 2]);
    free(buffer);
  }
  if (rank == 0) printf("]\n");
  free(ms);
  MPI_Finalize();
  return 0;
}
