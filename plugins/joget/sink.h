/* joget sink: declarations shared by the sink's files (private to the plugin; see joget.h for the plugin's).
 *
 * Files: sink.c (the protocol's outline; RUN entry, after_start and the final check; ops), sink_task.c (a
 * task's helpers, completion, requests with a continuation), sink_lookups.c (cached lookups: identities,
 * hashes, users, latest versions, a definition's facts; the admin gate; the target definition),
 * sink_start.c (the record lock; start, reconcile, adopt, the duplicate check), sink_scope.c (the scopes:
 * activities and variables), sink_joins.c (AND-join arrivals), sink_children.c (sub-flow children),
 * sink_assign.c (reassign and accept), sink_check.c (reading a target instance, comparing a scope, VERIFY),
 * sink_plan.c (PLAN, the record on the target, losses).
 * Functions shared between these files start with joget_ (the plugin's rule for non-static symbols).
 */
#ifndef FERRY_JOGET_SINK_H
#define FERRY_JOGET_SINK_H

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "joget.h"

typedef struct jt jt;

typedef struct acts_pg {
  char *pid;
  int start;
} acts_pg;

/* One lock per (target definition, record id): two items whose instances share a record are never started
 * at the same time, so that the check after a start ("exactly one new instance of this definition for this
 * record since the intent") cannot take the other item's fresh instance for a duplicate. */
typedef struct jlock {
  char *key;
  jt *holder;
  jt *wait_head, *wait_tail;
  struct jlock *next;
} jlock;

typedef struct joget_snk {
  joget_ctx_t *c;
  jlock *locks;
  jt *ready;          /* tasks given a lock, to be resumed from the timer (a clean stack) */
  uv_timer_t *wake;   /* resumes `ready`; freed by its close callback */
  int gate; /* 0 unknown, 1 checking, 2 ok, 3 failed */
  ferry_error gate_err;
  jt *gate_wait;
  joget_cache users;    /* user -> "ok": the identity check */
  joget_cache hashes;   /* user -> login hash (start_as hash) */
  joget_cache defs;     /* target definition -> facts */
  joget_cache latest;   /* "app#proc" -> latest package version */
  joget_cache dirusers; /* user -> true/false: exists in dir_user (dsn) */
  unsigned char note_key[32]; /* the identity notes' key (sink_lookups.c), derived once when note_key_set */
  int note_key_set;
  long users_checked, users_noted; /* identity checks this sink made, and those another worker's note spared */
} joget_snk;

struct jt {
  joget_snk *k;
  joget_ctx_t *c;
  ferry_task *task;
  const ferry_item *it;
  json_t *src; /* item body (borrowed) */
  json_t *st;  /* task state (borrowed) */
  json_t *rep; /* task report (borrowed) */
  ferry_mode mode;
  char *tdef; /* target definition app#ver#proc */
  char *tapp, *tver, *tproc;
  int pending;
  ferry_error err;
  void (*then)(jt *);
  jt *gate_next;
  /* identity of the moment (user calls) */
  joget_ident uid;
  char *uid_label;
  /* scopes: [{"src": body, "pid": target id}] processed in order */
  json_t *scopes;
  size_t si;
  json_t *tacts; /* open activities of the current scope on the target */
  json_t *tvars; /* variables of the current scope on the target */
  json_t *calls; /* planned calls */
  size_t ci;
  json_t *cands; /* reconcile / children candidates */
  json_t *diffs; /* check / verify differences */
  json_t *plan;  /* plan: collected facts */
  json_t *reasons;
  int acts_called;
  int dirty;       /* the current scope was written to after its last read */
  int vars_stale;  /* engine logic ran (activity start, accept): variables must be read again */
  json_t *checked; /* scopes compared in this attempt: {pid: true} */
  json_t *tdbl;    /* variables read from the double column (compared as numbers) */
  int vars_http;   /* the SQL read of variables cannot be used: read them over HTTP */
  void (*after_vars)(jt *);
  json_t *cands_pg; /* acts_pg contexts to free */
  void (*after_def)(jt *);
  void (*after_cands)(jt *);
  /* the record lock (see jlock) */
  jlock *lock;
  void (*lock_next)(jt *);
  jt *lock_wait_next;
  int repair;          /* ferry run --repair: converge on the recorded target instance */
  int final_dup;       /* the duplicate check before done: 1 running, 2 done */
  json_t *jarr;        /* join arrivals of the current scope still to re-create: [{join, def_id, performer}] */
  size_t ji;
  json_t *tarrived;    /* arrivals the target already counts: {"join|def": n} */
  json_t *jcall;       /* the activity/start call of a join arrival (read by its answer) */
};

typedef void (*jt_take)(jt *t, json_t *doc, void *ud);
typedef void (*jt_take_pg)(jt *t, const joget_res *res, void *ud);
/* target instance -> source instance (the plugin's own bookkeeping: '_' keeps it out of export-map) */
#define JOGET_REVERSE_KIND "_joget-target-process"

/* ---- sink.c -------------------------------------------------------------------------------------------- */
void joget_check_next(jt *t);
void joget_check_begin(jt *t);
void joget_finish_run(jt *t);
void joget_collect_child_latest(jt *t, json_t *body);
void joget_run_checked(jt *t);
void joget_resume_single(jt *t);
void joget_run_item(jt *t);
void joget_dispatch(jt *t);

/* ---- sink_task.c --------------------------------------------------------------------------------------- */
const char *joget_item_id(jt *t);
void joget_note(jt *t, const char *fmt, ...) FERRY_PRINTF(2, 3);
void joget_rep_push(jt *t, const char *key, json_t *v);
void joget_loss(jt *t, json_t *l);
char *joget_var_text(json_t *v);
int joget_var_at_start(const char *name, const char *val);
void joget_jt_fail_err(jt *t, const ferry_error *e);
void joget_jt_fail(jt *t, int code, const char *fmt, ...) FERRY_PRINTF(3, 4);
void joget_jt_fail_hook(jt *t, const char *point, int status, const ferry_error *err);
void joget_jt_done(jt *t);
void joget_jt_free(jt *t);
int joget_intent(jt *t, const char *step);
void joget_jt_req(jt *t, const char *method, const char *path, const char *const *params, const joget_ident *id,
                  jt_take take, void *ud);
void joget_jt_admin(jt *t, const char *method, const char *path, const char *const *params, jt_take take,
                    void *ud);
void joget_jt_pg(jt *t, const char *sql, int n, const char *const *params, jt_take_pg take, void *ud);
/* One page of the activities of process pid (monitoring/activity/list, 100 rows from start) to take(). */
void joget_read_acts_page(jt *t, const char *pid, int start, jt_take take);
void joget_jt_then(jt *t, void (*next)(jt *));
void joget_jt_kick(jt *t);

/* ---- sink_lookups.c ------------------------------------------------------------------------------------ */
void joget_jt_lookup(jt *t, joget_cache *cc, const char *key, joget_once_start start, const char *slot, int soft);
void joget_user_ident_from(joget_ctx_t *c, const char *user, const char *hash, joget_ident *id, char **label);
void joget_hash_start(joget_ctx_t *c, const char *key, joget_once *o);
void joget_user_check_start(joget_ctx_t *c, const char *key, joget_once *o);
/* The name of the shared note saying that `user`'s identity check passed (sink_lookups.c): "joget identity "
 * and 64 hex digits, a fingerprint of the user and of the settings that calls as that user depend on; NULL
 * when it cannot be derived. malloc'd. */
char *joget_identity_note_name(joget_ctx_t *c, const char *user);
void joget_diruser_start(joget_ctx_t *c, const char *key, joget_once *o);
void joget_latest_start(joget_ctx_t *c, const char *key, joget_once *o);
void joget_def_start(joget_ctx_t *c, const char *key, joget_once *o);
void joget_gate_enter(jt *t);
char *joget_map_def(jt *t, const char *sdef, int *needs_latest);
void joget_resolve_def(jt *t, void (*next)(jt *));

/* ---- sink_start.c -------------------------------------------------------------------------------------- */
void joget_lock_take(jt *t, const char *key, void (*next)(jt *));
void joget_lock_drop(jt *t);
void joget_single_check(jt *t);
void joget_do_start(jt *t);
int joget_known_elsewhere(jt *t, const char *pid, const char *src_id);
void joget_cands_find(jt *t, void (*next)(jt *));
void joget_reconcile_start(jt *t);
/* The latest UTC time (ms) a display date of a process list can stand for: the emulator's
 * "yyyy-MM-dd hh:mm a" (UTC) ends its minute; Joget's default "dd-MM-yyyy hh:mm aa" is in the server's time
 * zone, so 14 h (the largest UTC offset) are added. -1 when `s` is neither. */
int64_t joget_parse_display_time(const char *s);

/* ---- sink_scope.c -------------------------------------------------------------------------------------- */
json_t *joget_scope_src(jt *t);
const char *joget_scope_pid(jt *t);
void joget_scopes_begin(jt *t);
json_t *joget_minus(json_t *a, json_t *b);
void joget_take_act_start(jt *t, json_t *doc, void *ud);
void joget_scope_acts_read(jt *t);
void joget_scope_vars(jt *t);

/* ---- sink_joins.c -------------------------------------------------------------------------------------- */
void joget_scope_joins(jt *t);

/* ---- sink_children.c ----------------------------------------------------------------------------------- */
void joget_scope_children(jt *t);

/* ---- sink_assign.c ------------------------------------------------------------------------------------- */
void joget_scope_reassign(jt *t);

/* ---- sink_check.c -------------------------------------------------------------------------------------- */
void joget_read_scope_acts(jt *t, const char *pid);
void joget_tidy_acts(jt *t);
void joget_read_scope_vars(jt *t, const char *pid);
void joget_then_vars(jt *t, void (*next)(jt *));
int joget_tv_same(jt *t, const char *name, const char *sv);
int joget_str_in(json_t *arr, const char *s);
json_t *joget_pair_acts(json_t *sacts, json_t *tacts);
char *joget_defs_text(json_t *acts);
void joget_compare_scope(jt *t, json_t *sbody, const char *pid);
void joget_verify_item(jt *t);

/* ---- sink_plan.c --------------------------------------------------------------------------------------- */
void joget_plan_latest(jt *t);
void joget_plan_item(jt *t);

#endif
