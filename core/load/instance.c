/* Plugin instances: one configured use of a plugin (context, options, init/fini) and what an instance can
 * ask of the core (ferry/plugin.h accessors). */
#include <stdlib.h>
#include <string.h>

#include "load/load.h"

/* The first option whose field does not fit in the context (the loader refuses such descriptors; this guards
 * instances created without it, as in tests), or NULL. */
static const ferry_option *misfit(const ferry_plugin *p) {
  for (const ferry_option *o = p->options; o && o->key; o++) {
    size_t sz = o->type == FERRY_OPT_INT                                 ? sizeof(int64_t)
                : o->type == FERRY_OPT_DOUBLE                            ? sizeof(double)
                : o->type == FERRY_OPT_BOOL || o->type == FERRY_OPT_ENUM ? sizeof(int)
                                                                         : sizeof(void *);
    if (o->offset > p->ctx_size || sz > p->ctx_size - o->offset) return o;
  }
  return NULL;
}

ferry_instance *ferry__instance_create_ex(const ferry_plugin *plugin, uint32_t role, const char *stage_name,
                                         uv_loop_t *loop, ferry_mode mode, json_t *options, const char *where,
                                         const ferry_instance_params *params, ferry_error *err) {
  char *w = where ? ferry_strdup(where)
                  : ferry_asprintf("stage \"%s\" plugin \"%s\"", stage_name ? stage_name : "",
                                    plugin && plugin->name ? plugin->name : "?");
  if (!plugin) {
    ferry_error_set(err, FERRY_EINTERNAL, "%s: no plugin", w);
    free(w);
    return NULL;
  }
  const ferry_option *bad = misfit(plugin);
  if (bad) {
    ferry_error_set(err, FERRY_EINTERNAL,
                    "%s: option \"%s\" lies outside the plugin's context (offset %zu, "
                    "ctx_size %zu; a bug in the plugin)",
                    w, bad->key, bad->offset, plugin->ctx_size);
    free(w);
    return NULL;
  }
  ferry_instance *ins = ferry__xcalloc(1, sizeof *ins);
  ins->plugin = plugin;
  ins->role = role;
  ins->stage_name = ferry_strdup(stage_name ? stage_name : "");
  ins->id = (ferry__log_id){role, plugin->name ? plugin->name : "?", ins->stage_name};
  ins->ctx = ferry__xcalloc(1, plugin->ctx_size ? plugin->ctx_size : 1);
  ins->loop = loop;
  ins->mode = mode;
  ins->concurrency = params && params->concurrency ? params->concurrency : 8;
  ins->rate = params ? params->rate : 0;
  ins->share = 1.0;
  ins->stage = params ? params->stage : NULL;
  ins->points = params && params->points ? ferry__strv_dup(params->points) : NULL;

  int rc = 0;
  if (params && params->options) {
    ferry__options_copy_to(params->options, ins->ctx); /* checked once, at load */
  } else {
    char *ow = ferry_asprintf("%s options", w);
    rc = ferry__options_apply_ex(plugin->options, options, ins->ctx, ow, params ? params->base_dir : NULL, role,
                                 err);
    free(ow);
  }
  if (!rc && plugin->init) {
    ferry_error ierr = FERRY_ERROR_INIT;
    rc = plugin->init(ins, &ierr);
    if (rc) {
      if (rc > 0) rc = FERRY_EINTERNAL;
      if (!ierr.message)
        ferry_error_set(&ierr, rc, "init failed (%s: %s), the plugin gave no reason", ferry_err_name(rc),
                        ferry_strerror(rc));
      if (!ierr.code) ierr.code = rc;
      ferry_error_prefix(&ierr, "%s", w);
      rc = ierr.code;
      if (err)
        ferry_error_move(err, &ierr);
      else
        ferry_error_clear(&ierr);
      ferry__options_release(plugin->options, ins->ctx);
    }
  }
  free(w);
  if (rc) {
    free(ins->ctx);
    free(ins->stage_name);
    ferry__strv_free(ins->points);
    free(ins);
    return NULL;
  }
  ins->initialized = 1;
  return ins;
}

ferry_instance *ferry__instance_create(const ferry_plugin *plugin, uint32_t role, const char *stage_name,
                                      uv_loop_t *loop, ferry_mode mode, json_t *options, const char *where,
                                      ferry_error *err) {
  return ferry__instance_create_ex(plugin, role, stage_name, loop, mode, options, where, NULL, err);
}

void ferry__instance_destroy(ferry_instance *ins) {
  if (!ins) return;
  if (ins->initialized && ins->plugin->fini) ins->plugin->fini(ins);
  ins->initialized = 0;
  ferry__options_release(ins->plugin->options, ins->ctx);
  free(ins->ctx);
  free(ins->stage_name);
  ferry__strv_free(ins->points);
  free(ins);
}

FERRY_API void *ferry_instance_ctx(const ferry_instance *ins) { return ins ? ins->ctx : NULL; }

FERRY_API uv_loop_t *ferry_instance_loop(const ferry_instance *ins) { return ins ? ins->loop : NULL; }

FERRY_API const char *ferry_instance_stage(const ferry_instance *ins) { return ins ? ins->stage_name : NULL; }

FERRY_API const char *ferry_instance_plugin(const ferry_instance *ins) {
  return ins && ins->plugin ? ins->plugin->name : NULL;
}

FERRY_API uint32_t ferry_instance_role(const ferry_instance *ins) { return ins ? ins->role : 0; }

FERRY_API ferry_mode ferry_instance_mode(const ferry_instance *ins) {
  return ins ? ins->mode : FERRY_MODE_RUN;
}

FERRY_API unsigned ferry_instance_concurrency(const ferry_instance *ins) {
  return ins ? ins->concurrency : 1;
}

FERRY_API double ferry_instance_rate(const ferry_instance *ins) { return ins ? ins->rate : 0; }
