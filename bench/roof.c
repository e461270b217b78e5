// The roof for `deno task bench`: the same DecoupledLionW update in C with
// OpenMP, in place, float32 with fmaf (bit-exact with the kernels). The
// update is memory-bandwidth bound: p, g and m are read, p and m written.
//
// Build: cc -O3 -march=native -fopenmp bench/roof.c -o roof -lm
// Usage: roof ELEMENTS THREADS, then one line per request on stdin:
//   "K" runs K steps and prints {"ms": [...]} (one time per step);
//   "quit" (or end of input) exits.

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static float lerp(float a, float b, float w) {
  float d = b - a;
  return w < 0.5f ? fmaf(w, d, a) : fmaf(w - 1.0f, d, b);
}

static float sign(float x) { return (float)((0.0f < x) - (x < 0.0f)); }

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static float *slots(long n) { return aligned_alloc(64, ((n * 4 + 63) / 64) * 64); }

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: roof ELEMENTS THREADS\n");
    return 2;
  }
  long n = atol(argv[1]);
  omp_set_num_threads(atoi(argv[2]));
  float *p = slots(n), *g = slots(n), *m = slots(n);
  // first touch by the threads that will use the pages
#pragma omp parallel for schedule(static)
  for (long i = 0; i < n; i++) {
    p[i] = sinf((float)i);
    g[i] = cosf((float)i);
    m[i] = 0.0f;
  }
  const float lr = 1e-4f, w1 = 1.0f - 0.9f, w2 = 1.0f - 0.99f, decay = 1.0f - 1e-4f;
  char line[64];
  while (fgets(line, sizeof line, stdin) && line[0] != 'q') {
    int steps = atoi(line);
    printf("{\"ms\": [");
    for (int s = 0; s < steps; s++) {
      double t0 = now_ms();
#pragma omp parallel for schedule(static)
      for (long i = 0; i < n; i++) {
        float gi = g[i], mi = m[i];
        float pi = p[i] * decay;
        p[i] = pi - lr * sign(lerp(mi, gi, w1));
        m[i] = lerp(mi, gi, w2);
      }
      printf("%s%.4f", s ? ", " : "", now_ms() - t0);
    }
    printf("]}\n");
    fflush(stdout);
  }
  free(p);
  free(g);
  free(m);
  return 0;
}
