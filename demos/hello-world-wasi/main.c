/*
 * hello-world-wasi: the seed workflow of Krustlet's wasi-provider, for wasmlet.
 * Prints to stdout and stderr, its environment, its arguments, and a file from a mounted ConfigMap.
 */
#include <stdio.h>
#include <stdlib.h>

extern char **environ;

int main(int argc, char **argv) {
  printf("hello from stdout!\n");
  fprintf(stderr, "hello from stderr!\n");

  for (char **e = environ; *e; e++) printf("%s\n", *e);

  printf("Args are: [");
  for (int i = 0; i < argc; i++) printf("%s\"%s\"", i ? ", " : "", argv[i]);
  printf("]\n");

  const char *path = "/mnt/config/myval";
  FILE *f = fopen(path, "r");
  if (!f) {
    fprintf(stderr, "cannot open %s\n", path);
    return 1;
  }
  char buf[512];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = '\0';
  fclose(f);
  printf("%s: %s\n", path, buf);
  return 0;
}
