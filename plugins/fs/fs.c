/* fs: files below a root directory, as a source (walk, stat, SHA-256) and as a sink (confined, atomic,
 * durable writes that keep mtime and mode, skip identical files, and compare checksums).
 *
 * Made for Joget's upload tree <wflow>/app_formuploads/<table>/<record>/<file>, usable for any tree.
 * Source: source*.c. Sink: sink*.c. Shared helpers: util.c. Reference: docs/plugins/fs.md.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"

static const ferry_opt_choice conflicts[] = {
    {"skip", CONFLICT_SKIP}, {"overwrite", CONFLICT_OVERWRITE}, {"fail", CONFLICT_FAIL}, {NULL, 0}};
static const ferry_opt_choice compares[] = {{"checksum", CMP_CHECKSUM}, {"mtime", CMP_MTIME}, {NULL, 0}};
static const ferry_opt_choice syncs[] = {
    {"syncfs", SYNC_SYNCFS}, {"fsync", SYNC_FSYNC}, {"none", SYNC_NONE}, {NULL, 0}};

#define SRC .roles = FERRY_KIND_SOURCE
#define SNK .roles = FERRY_KIND_SINK

static const ferry_option fs_options[] = {
    {.key = "root", FERRY_OPT_STRING, NULL, FERRY_OPT_REQUIRED | FERRY_OPT_NONEMPTY, offsetof(fs_ctx, root),
     "directory the source reads below / the sink writes below (relative paths: to the current directory)"},
    {.key = "name", FERRY_OPT_STRING, NULL, 0, offsetof(fs_ctx, name),
     "source: root name in item keys \"<name>/<path>\" (default: the root's last component, e.g. "
     "app_formuploads)", SRC},
    {.key = "tables", FERRY_OPT_STRING_LIST, NULL, 0, offsetof(fs_ctx, tables),
     "source: only these first-level directories (Joget: form table names; an app_fd_ prefix is accepted)", SRC},
    {.key = "records", FERRY_OPT_STRING_LIST, NULL, 0, offsetof(fs_ctx, records),
     "source: only these second-level directories (Joget: record ids)", SRC},
    {.key = "records_file", FERRY_OPT_STRING, NULL, 0, offsetof(fs_ctx, records_file),
     "source: file of more record ids, one per line (blank lines and # comments ignored)", SRC},
    {.key = "checksum", FERRY_OPT_BOOL, "true", 0, offsetof(fs_ctx, checksum),
     "source: compute each file's SHA-256 (thread pool) for the sink to compare with the bytes it writes", SRC},
    {.key = "count", FERRY_OPT_BOOL, "false", 0, offsetof(fs_ctx, count),
     "source: walk the tree once before copying to count the files, so that the progress display has a total "
     "and an ETA (one more walk of the directories, no file is opened)", SRC},
    {.key = "on_conflict", FERRY_OPT_ENUM, "\"overwrite\"", 0, offsetof(fs_ctx, on_conflict),
     "sink: a target file exists and differs: overwrite | skip (keep it) | fail", SNK, .choices = conflicts},
    {.key = "compare", FERRY_OPT_ENUM, "\"checksum\"", 0, offsetof(fs_ctx, compare),
     "sink: an existing target file is identical when: checksum (same size and SHA-256) | mtime (same size "
     "and mtime, like rsync's quick check)", SNK, .choices = compares},
    {.key = "sync", FERRY_OPT_ENUM, "\"syncfs\"", 0, offsetof(fs_ctx, sync),
     "sink: durability before items count as done: syncfs (one syncfs of the target file system per group) | "
     "fsync (each file and its directories) | none", SNK, .choices = syncs},
    {.key = "create_root", FERRY_OPT_BOOL, "false", 0, offsetof(fs_ctx, create_root),
     "sink: create the root directory (one level) when it does not exist", SNK},
    {.key = "owner", FERRY_OPT_STRING, NULL, 0, offsetof(fs_ctx, owner),
     "sink: user[:group] (names or numbers) that written files and created directories get (needs the right "
     "to chown)", SNK},
    FERRY_OPTIONS_END};

#undef SRC
#undef SNK

static int fs_init(ferry_instance *ins, ferry_error *err) {
  fs_ctx *c = ferry_instance_ctx(ins);
  c->ins = ins;
  if (ferry_instance_role(ins) == FERRY_KIND_SOURCE) {
    int rc = fs_source_init(c, err);
    if (rc) fs_source_fini(c); /* fini() is not called when init() fails */
    return rc;
  }
  int rc = fs_sink_init(c, err);
  if (rc) fs_sink_fini(c);
  return rc;
}

static void fs_fini(ferry_instance *ins) {
  fs_ctx *c = ferry_instance_ctx(ins);
  fs_source_fini(c);
  fs_sink_fini(c);
}

FERRY_PLUGIN_DEFINE(fs, .kinds = FERRY_KIND_SOURCE | FERRY_KIND_SINK, .name = "fs",
                    .version = FERRY_VERSION_STRING,
                    .description =
                        "files below a root directory (Joget uploads): confined, atomic, durable copies "
                        "with checksums",
                    .license = "Apache-2.0", .options = fs_options, .ctx_size = sizeof(fs_ctx),
                    .init = fs_init, .fini = fs_fini, .source = &fs_source_ops, .sink = &fs_sink_ops);
