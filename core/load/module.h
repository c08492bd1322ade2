/* ferry core: the libltdl wrapper used by the loader (registry.c). Nothing else in ferry calls libltdl.
 *
 * libltdl keeps global state and is not thread-safe; every call here takes one process-wide lock, and
 * lt_dlinit()/lt_dlexit() are paired per open module, so libltdl is initialised exactly while at least one
 * module is open.
 */
#ifndef FERRY_CORE_MODULE_H
#define FERRY_CORE_MODULE_H

/* The file name extension of loadable modules on this platform. */
#define FERRY_MODULE_EXT ".so"

typedef struct ferry_module ferry_module;

/* Opens the module file `path` with lt_dlopenadvise (advice: try the platform extension, local symbols:
 * the module's symbols do not become visible to later modules). On failure returns NULL and sets *errtext
 * to a malloc'd description from libltdl/the dynamic linker (caller frees). Module code may run (ELF
 * constructors) but no ferry plugin code is called. */
ferry_module *ferry__module_open(const char *path, char **errtext);
/* The address of `symbol` in the module, or NULL when the module does not define it. Valid until
 * ferry__module_close(). */
const void *ferry__module_sym(ferry_module *m, const char *symbol);
/* Closes the module (NULL allowed); every address obtained from it becomes invalid. */
void ferry__module_close(ferry_module *m);

#endif
