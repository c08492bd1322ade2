/* See rt_plugins.h. RT_STATIC_<id> is defined by CMake for each test plugin built STATIC. */
#include <stddef.h>

#include "rt_plugins.h"

#define DECL(id) extern const ferry_plugin ferry_plugin_##id;
#if defined(RT_STATIC_rt_gen)
DECL(rt_gen)
#endif
#if defined(RT_STATIC_rt_sink)
DECL(rt_sink)
#endif
#if defined(RT_STATIC_rt_isink)
DECL(rt_isink)
#endif
#if defined(RT_STATIC_rt_hook)
DECL(rt_hook)
#endif
#if defined(RT_STATIC_bench_gen)
DECL(bench_gen)
#endif
#if defined(RT_STATIC_bench_null)
DECL(bench_null)
#endif

static const ferry_plugin *const builtins[] = {
#if defined(RT_STATIC_rt_gen)
    &ferry_plugin_rt_gen,
#endif
#if defined(RT_STATIC_rt_sink)
    &ferry_plugin_rt_sink,
#endif
#if defined(RT_STATIC_rt_isink)
    &ferry_plugin_rt_isink,
#endif
#if defined(RT_STATIC_rt_hook)
    &ferry_plugin_rt_hook,
#endif
#if defined(RT_STATIC_bench_gen)
    &ferry_plugin_bench_gen,
#endif
#if defined(RT_STATIC_bench_null)
    &ferry_plugin_bench_null,
#endif
    NULL};

static const char *const plugin_dirs[] = {RT_PLUGIN_DIR, NULL};

void rt_runtime_opts(ferry_runtime_opts *o) {
  o->struct_size = sizeof *o;
  o->plugin_path = plugin_dirs;
  o->no_default_path = 1;
  o->journal_path = NULL;
}

int rt_add_plugins(ferry_runtime *rt, ferry_error *err) {
  for (size_t i = 0; builtins[i]; i++) {
    int rc = ferry_runtime_add_plugin(rt, builtins[i], err);
    if (rc < 0) return rc;
  }
  return 0;
}

const char *rt_plugin_mode(void) {
#if defined(RT_STATIC_rt_sink)
  return "STATIC";
#else
  return "MODULE";
#endif
}
