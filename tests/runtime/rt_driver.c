/* rt_driver: runs a pipeline from a config file through the runtime API with the test plugins available
 * (built in or from the build tree) — the child process of the crash test in the build mode where the
 * `ferry` CLI cannot see the test plugins.
 *   rt_driver CONFIG [--mode run|plan|verify] [--limit N]
 * Prints "rc=<code> done=<n> skipped=<n> failed=<n>"; exits 0 when the run returned 0, else 1. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_plugins.h"

static ferry_runtime *g_rt;
static void on_signal(uv_signal_t *h, int signum) {
  (void)h;
  (void)signum;
  ferry_runtime_interrupt(g_rt);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: rt_driver CONFIG [--mode run|plan|verify] [--limit N]\n");
    return 2;
  }
  ferry_run_opts ro = {.struct_size = sizeof ro, .mode = FERRY_MODE_RUN};
  for (int i = 2; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--mode"))
      ro.mode = !strcmp(argv[i + 1], "plan")     ? FERRY_MODE_PLAN
                : !strcmp(argv[i + 1], "verify") ? FERRY_MODE_VERIFY
                                                 : FERRY_MODE_RUN;
    else if (!strcmp(argv[i], "--limit"))
      ro.limit = strtoll(argv[i + 1], NULL, 10);
  }
  ferry_error err = FERRY_ERROR_INIT;
  ferry_runtime_opts o;
  rt_runtime_opts(&o);
  ferry_runtime *rt = ferry_runtime_new(&o, &err);
  if (!rt || rt_add_plugins(rt, &err) < 0 || ferry_runtime_load_file(rt, argv[1], &err) < 0) {
    fprintf(stderr, "rt_driver: %s\n", err.message ? err.message : "cannot start");
    ferry_error_clear(&err);
    ferry_runtime_free(rt);
    return 2;
  }
  g_rt = rt;
  uv_signal_t sig;
  uv_signal_init(ferry_runtime_loop(rt), &sig);
  uv_signal_start(&sig, on_signal, SIGINT);
  uv_unref((uv_handle_t *)&sig);
  ferry_run_summary sum = {0};
  int rc = ferry_runtime_run(rt, &ro, &sum, &err);
  uv_close((uv_handle_t *)&sig, NULL);
  uv_run(ferry_runtime_loop(rt), UV_RUN_NOWAIT);
  printf("rc=%d done=%lld skipped=%lld failed=%lld\n", rc, (long long)sum.done, (long long)sum.skipped,
         (long long)sum.failed);
  if (rc) fprintf(stderr, "rt_driver: %s\n", err.message ? err.message : ferry_strerror(rc));
  ferry_error_clear(&err);
  ferry_runtime_free(rt);
  return rc == 0 ? 0 : 1;
}
