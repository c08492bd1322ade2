/* How the runtime test programs get the test plugins: built in (added with ferry_runtime_add_plugin) when
 * CMake built them STATIC, else opened from the build tree's plugin directory. */
#ifndef FERRY_RT_PLUGINS_H
#define FERRY_RT_PLUGINS_H
#include <ferry/ferry.h>
#include <ferry/runtime.h>

/* Fills runtime options that find the test plugins (and nothing from the environment). */
void rt_runtime_opts(ferry_runtime_opts *o);
/* Adds the plugins that were built in; returns 0 or a negative code. */
int rt_add_plugins(ferry_runtime *rt, ferry_error *err);
/* "STATIC" or "MODULE" (how rt-sink was built). */
const char *rt_plugin_mode(void);
#endif
