/*
 * Krustlet's wasi-provider demo "hello-world-rust", written in C for wasmlet (no Rust toolchain
 * needed): it prints to stdout and stderr, its environment sorted by name, and its arguments
 * (after argv[0]) in the form Rust's `{:?}` prints a Vec<String>.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

static int by_name(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int main(int argc, char **argv) {
  /* One log: unbuffered, so stdout and stderr lines keep the order they were written in. */
  setvbuf(stdout, NULL, _IONBF, 0);
  printf("hello from stdout!\n");
  fprintf(stderr, "hello from stderr!\n");

  size_t n = 0;
  while (environ[n]) n++;
  char **vars = malloc((n + 1) * sizeof *vars);
  if (!vars) return 1;
  for (size_t i = 0; i < n; i++) vars[i] = environ[i];
  qsort(vars, n, sizeof *vars, by_name);
  for (size_t i = 0; i < n; i++) printf("%s\n", vars[i]);
  free(vars);

  printf("Args are: [");
  for (int i = 1; i < argc; i++) printf("%s\"%s\"", i > 1 ? ", " : "", argv[i]);
  printf("]\n");
  return 0;
}
