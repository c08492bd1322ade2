/* seeddms plugin: private header shared by its files (context, the table map, the query helper). */
#ifndef SEEDDMS_H
#define SEEDDMS_H

#include <stdint.h>
#include <ferry/ferry.h>
#include <ferry/sql.h>

enum { SEEDDMS_LAYOUT_AUTO = 0, SEEDDMS_LAYOUT_51 = 51, SEEDDMS_LAYOUT_60 = 60 };
enum { SEEDDMS_DEFS_MATCH = 0, SEEDDMS_DEFS_CREATE = 1 };

typedef struct seeddms_ctx {
  /* options, written by the core before init() and owned by it */
  char *dsn;
  char *content_dir;
  char *offset_dir;
  int64_t max_dir_id;
  int layout;
  int definitions;        /* sink: SEEDDMS_DEFS_MATCH or SEEDDMS_DEFS_CREATE */
  /* our own state */
  ferry_instance *ins;
  ferry_sql *db;
  int detected;           /* the layout found (SEEDDMS_LAYOUT_51/60), 0 before */
  struct seeddms_src *src; /* source state */
  struct seeddms_snk *snk; /* sink state */
} seeddms_ctx;

/* How a column refers to something (schema.c). */
typedef enum seeddms_ref {
  SD_PLAIN = 0,
  SD_USER,       /* tblUsers.id: carried as the login */
  SD_GROUP,      /* tblGroups.id: as the name */
  SD_ATTRDEF,    /* tblAttributeDefinitions.id: as the name */
  SD_STATE,      /* tblWorkflowStates.id: as the name */
  SD_WORKFLOW,   /* tblWorkflows.id: as the name */
  SD_TRANSITION, /* tblWorkflowTransitions.id: as "workflow\x1fstate\x1faction\x1fnext" */
  SD_FOLDER,     /* tblFolders.id: through the journal's id map ("folder") */
  SD_FLIST,      /* ":1:5:" folder lists: every id through the id map */
  SD_VAR,        /* an id written earlier by the same item (var = prefix) */
  SD_DOCDIR,     /* tblDocumentContent.dir: the target's directory of the document */
  SD_ACLTARGET   /* tblACLs.target: folder or document of this item by targetType */
} seeddms_ref;

typedef struct seeddms_col {
  const char *name;
  seeddms_ref ref;
  const char *var; /* SD_VAR: the prefix of the variable ("doc", "content", "status", "run", "folder") */
} seeddms_col;

typedef struct seeddms_table {
  const char *name;
  const char *id;      /* auto-increment key left to the target and saved as "<idvar>:<old>", or NULL */
  const char *idvar;
  seeddms_col cols[8]; /* columns with a reference; others are copied as they are */
} seeddms_table;

/* The definitions matched by name (the source writes names, the sink looks them up). */
enum { M_USER, M_GROUP, M_ATTRDEF, M_STATE, M_WORKFLOW, M_TRANSITION, SD_NMAPS };
#define M_NMAPS SD_NMAPS
extern const char *const seeddms_name_sql[SD_NMAPS];
/* The M_* map of a reference kind, or -1. */
int seeddms_ref_map(seeddms_ref ref);
/* The name of a row of seeddms_name_sql[map]: malloc'd, or NULL. */
char *seeddms_row_name(int map, json_t *row);

/* The tables a document or a folder item carries, in write order; NULL-terminated by name. */
extern const seeddms_table seeddms_tables[];
const seeddms_table *seeddms_table_get(const char *name);
/* A table by name as a sink writes it on a target of `layout` (on 5.1 the runs and the log differ), or NULL;
 * the write order stays that of seeddms_tables. */
const seeddms_table *seeddms_table_in(int layout, const char *name);
/* "1/" style document directory for a document id (facts 4). malloc'd. */
char *seeddms_doc_dir(int64_t doc, int64_t max_dir_id);
/* Absolute path of a version's file. malloc'd. */
char *seeddms_version_path(const seeddms_ctx *c, int64_t doc, const char *version, const char *file_type);

/* Runs one statement and collects all its rows as an array of objects {column: string|null}; cb gets a
 * borrowed array (NULL on failure, with err). Returns 0 or a negative code (cb not called). */
typedef void (*seeddms_rows_fn)(void *arg, json_t *rows, const ferry_error *err);
int seeddms_collect(ferry_sql *db, ferry_sql_txn *txn, const char *sql, size_t nparams,
                    const ferry_sql_value *params, seeddms_rows_fn cb, void *arg);
/* Opens the endpoint of c->dsn. */
int seeddms_open(seeddms_ctx *c, ferry_error *err);
/* Detects the layout (tblWorkflowLog has workflowdocumentcontent: 6.0) unless the option fixes it; cb(arg,
 * status, err). */
void seeddms_detect(seeddms_ctx *c, ferry_done_fn cb, void *arg);
/* Column value of a collected row: string or NULL. */
const char *seeddms_str(json_t *row, const char *col);

extern const ferry_source_ops seeddms_source_ops;
extern const ferry_sink_ops seeddms_sink_ops;
void seeddms_source_free(seeddms_ctx *c);
void seeddms_sink_free(seeddms_ctx *c);

/* source_runs.c: replaces the 5.1 tables "x:tblWorkflowDocumentContent" and "x:tblWorkflowLog" of `tables`
 * by 6.0-shaped "tblWorkflowDocumentContent" (run ids "r<n>") and "tblWorkflowLog" rows. */
int seeddms_runs_from_51(json_t *tables, ferry_error *err);

/* sink_51.c: the 5.1-shaped tables of a document item's 6.0-shaped `tables` (a new object; the item's own rows
 * are not changed): only active runs get a run row (parentworkflow = the parent run's workflow, "0" for none),
 * log rows name (document, version, workflow) and come in source id order, tblDocumentContent loses
 * revisiondate. What 5.1 cannot hold is appended to `losses` as {"kind", "what"}: "revisiondate", "runs_51"
 * (one version ran one workflow more than once: 5.1 links their logs as one; only when `from_51` is 0),
 * "run" (a finished run without log entries, which 5.1 cannot keep). NULL with err on an item whose log
 * names a run it does not hold. */
json_t *seeddms_tables_to_51(json_t *tables, int from_51, json_t *losses, ferry_error *err);

/* sink_files.c: copy (or, dry, only read) a version's file on the thread pool, checking its MD5. */
typedef void (*seeddms_file_fn)(void *arg, int status, const char *message);
void seeddms_file_copy(seeddms_ctx *c, const char *src, const char *dst, const char *md5, int dry,
                       seeddms_file_fn cb, void *arg);

/* sink.c: a write job (statements run in one transaction, in order; a parameter {"var": name} takes the
 * insert id an earlier statement saved under that name), for sink_defs.c. A job owns its statements; run
 * consumes it (the task is completed when it ends; after() sees the saved ids before). */
typedef struct seeddms_job seeddms_job;
typedef void (*seeddms_after_fn)(seeddms_ctx *c, json_t *vars);
seeddms_job *seeddms_job_new(seeddms_ctx *c, ferry_task *task);
/* params: stolen JSON array of strings, nulls and {"var": name}; save: variable for the insert id or NULL */
void seeddms_job_add(seeddms_job *j, const char *sql, json_t *params, const char *save);
size_t seeddms_job_size(const seeddms_job *j);
void seeddms_job_run(seeddms_job *j, seeddms_after_fn after);
void seeddms_job_free(seeddms_job *j);
/* The sink's name -> target id map of M_* `map` (borrowed). */
json_t *seeddms_sink_ids(seeddms_ctx *c, int map);
/* sink_defs.c: the "definitions" item: matched by name (differences reported), missing ones created with
 * option definitions = "create". Completes the task. */
void seeddms_defs(seeddms_ctx *c, ferry_task *task);

#endif
