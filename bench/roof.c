// The roof for `deno task bench`: the same DecoupledLionW update in C with
// OpenMP, in place, float32 with fmaf (bit-exact with the kernels). The
// update is memory-bandwidth bound: p, g and m are read, p and m written.
//
// Build: cc -O3 -march=native -fopenmp bench/roof.c -o roof -lm
// With a third argument "metrics", each step also takes the six partial
// sums of the metrics (Σm², Σp², Σu², Σg², Σu·g, Σm·g) in double, vectorized
// by OpenMP reductions: the limit of a step with metrics.
//
// Usage: roof ELEMENTS THREADS [metrics], then one line per request on stdin:
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

static volatile double sink;

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static float *slots(long n) { return aligned_alloc(64, ((n * 4 + 63) / 64) * 64); }

int main(int argc, char **argv) {
  if (argc != 3 && argc != 4) {
    fprintf(stderr, "usage: roof ELEMENTS THREADS [metrics]\n");
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
  const int metrics = argc == 4;
  double sums[6] = {0};
  const float lr = 1e-4f, w1 = 1.0f - 0.9f, w2 = 1.0f - 0.99f, decay = 1.0f - 1e-4f;
  char line[64];
  while (fgets(line, sizeof line, stdin) && line[0] != 'q') {
    int steps = atoi(line);
    printf("{\"ms\": [");
    for (int s = 0; s < steps; s++) {
      double t0 = now_ms();
      if (metrics) {
        double mm = 0, pp = 0, uu = 0, gg = 0, ug = 0, mg = 0;
#pragma omp parallel for simd schedule(static) reduction(+ : mm, pp, uu, gg, ug, mg)
        for (long i = 0; i < n; i++) {
          float gi = g[i], mi = m[i];
          float pi = p[i] * decay - lr * sign(lerp(mi, gi, w1));
          mi = lerp(mi, gi, w2);
          p[i] = pi;
          m[i] = mi;
          float ui = fmaf(-1e-4f, pi, lr * sign(lerp(mi, gi, w1)));
          mm += (double)mi * mi;
          pp += (double)pi * pi;
          uu += (double)ui * ui;
          gg += (double)gi * gi;
          ug += (double)ui * gi;
          mg += (double)mi * gi;
        }
        sums[0] += mm, sums[1] += pp, sums[2] += uu, sums[3] += gg, sums[4] += ug, sums[5] += mg;
      } else {
#pragma omp parallel for schedule(static)
        for (long i = 0; i < n; i++) {
          float gi = g[i], mi = m[i];
          float pi = p[i] * decay;
          p[i] = pi - lr * sign(lerp(mi, gi, w1));
          m[i] = lerp(mi, gi, w2);
        }
      }
      printf("%s%.4f", s ? ", " : "", now_ms() - t0);
    }
    printf("]}\n");
    fflush(stdout);
  }
  sink = sums[0] + sums[1] + sums[2] + sums[3] + sums[4] + sums[5]; // keep the sums live
  free(p);
  free(g);
  free(m);
  return 0;
}
