/* One core per process: how many files named libferry.so* this process has mapped (distinct paths), from
 * /proc/self/maps; -1 when that cannot be read. A program linked with the core objects (ferry_core) must see
 * 0 after it opened modules (the modules bound to its own core); one linked with libferry, 1. */
#ifndef FERRY_TEST_ONECORE_H
#define FERRY_TEST_ONECORE_H
#include <stdio.h>
#include <string.h>

static inline int ft_libferry_mapped(void) {
  FILE *f = fopen("/proc/self/maps", "r");
  if (!f) return -1;
  char line[4352], seen[8][4096];
  int n = 0;
  while (fgets(line, sizeof line, f)) {
    char *path = strchr(line, '/');
    if (!path) continue;
    path[strcspn(path, "\n")] = '\0';
    if (strncmp(strrchr(path, '/') + 1, "libferry.so", 11)) continue;
    int dup = 0;
    for (int i = 0; i < n; i++) dup |= !strcmp(seen[i], path);
    if (!dup && n < 8) snprintf(seen[n++], sizeof seen[0], "%s", path);
  }
  fclose(f);
  return n;
}
#endif
