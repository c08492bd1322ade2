"""Shared helpers of ferry's SeedDMS test tools (mkfixture.py, sdcheck.py, refconv.py).

Database access without a Python MariaDB driver: SQLite through the sqlite3 module, MariaDB/MySQL through the
`mariadb` (or `mysql`) command-line client over a Unix socket, rows read back as one JSON_OBJECT per line.

A database is named by a spec:
    sqlite:PATH                       an SQLite file
    mariadb:SOCKET:DATABASE           a MariaDB/MySQL database reached over SOCKET; user root when run as root
                                      (unix_socket login, as tests/support/mariadb.sh sets up), else "ferry";
                                      SEEDDMS_DB_USER and MARIADB_TEST_PASSWORD override

The workflow model (Run, replay_runs) follows docs/seeddms-facts.md 7.1-7.3 and 8: who may trigger a transition,
when a transition fires, when a run ends.
"""
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys

# status codes (docs/seeddms-facts.md 3.7) and the layout names used everywhere
S_RELEASED, S_REJECTED, S_IN_WORKFLOW = 2, -1, 3
LAYOUTS = ("5.1", "6.0")
HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMA_DIR = os.path.join(HERE, "schema")


class ToolError(Exception):
    """A clear error for the user: what went wrong and where."""


def die(msg, code=2):
    print(f"{os.path.basename(sys.argv[0])}: {msg}", file=sys.stderr)
    sys.exit(code)


def schema_sql(engine, layout):
    """The text of our schema for ENGINE ("mysql" or "sqlite") and LAYOUT ("5.1" or "6.0")."""
    if layout not in LAYOUTS:
        raise ToolError(f"unknown layout {layout!r} (expected 5.1 or 6.0)")
    parts = []
    for name in (f"{engine}-common.sql", f"{engine}-{layout}.sql"):
        with open(os.path.join(SCHEMA_DIR, name), encoding="utf-8") as f:
            parts.append(f.read())
    return "\n".join(parts)


def sql_literal(v):
    """A MySQL literal for a Python value (strings with backslash escapes, the server's default mode)."""
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    s = str(v).replace("\\", "\\\\").replace("'", "\\'").replace("\0", "\\0")
    s = s.replace("\n", "\\n").replace("\r", "\\r").replace("\x1a", "\\Z")
    return "'" + s + "'"


class Db:
    """One SeedDMS database, SQLite or MariaDB. rows() returns dicts keyed by column name."""

    def __init__(self, spec):
        self.spec = spec
        if spec.startswith("sqlite:"):
            self.engine = "sqlite"
            self.path = spec[len("sqlite:"):]
            if not self.path:
                raise ToolError(f"database spec {spec!r}: no file name after sqlite:")
            self.conn = None
        elif spec.startswith("mariadb:") or spec.startswith("mysql:"):
            self.engine = "mysql"
            rest = spec.split(":", 1)[1]
            if ":" not in rest:
                raise ToolError(f"database spec {spec!r}: expected mariadb:SOCKET:DATABASE")
            self.socket, self.database = rest.rsplit(":", 1)
            if not self.socket or not self.database:
                raise ToolError(f"database spec {spec!r}: socket or database name empty")
            self.client = shutil.which("mariadb") or shutil.which("mysql")
            if not self.client:
                raise ToolError("neither the mariadb nor the mysql command-line client is on PATH")
        else:
            raise ToolError(f"database spec {spec!r}: expected sqlite:PATH or mariadb:SOCKET:DATABASE")
        self._columns = {}

    # ---- opening -------------------------------------------------------------------------------------------
    def open_sqlite(self, create):
        if self.conn is not None:
            return
        if not create and not os.path.exists(self.path):
            raise ToolError(f"{self.spec}: no such SQLite file")
        self.conn = sqlite3.connect(self.path)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA foreign_keys = ON")  # as SeedDMS does on every connection

    def _mysql(self, sql, database=True):
        user = os.environ.get("SEEDDMS_DB_USER") or ("root" if os.geteuid() == 0 else "ferry")
        cmd = [self.client, "--no-defaults", "-S", self.socket, "-u", user, "--batch", "--raw",
               "--skip-column-names", "--default-character-set=utf8mb4"]
        if user != "root" or "MARIADB_TEST_PASSWORD" in os.environ:
            cmd.append("-p" + os.environ.get("MARIADB_TEST_PASSWORD", "ferry"))
        if database:
            cmd.append(self.database)
        r = subprocess.run(cmd, input=sql.encode("utf-8"), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if r.returncode != 0:
            raise ToolError(f"{self.spec}: {r.stderr.decode('utf-8', 'replace').strip()}")
        return r.stdout.decode("utf-8")

    def open(self, create=False):
        if self.engine == "sqlite":
            self.open_sqlite(create)
        else:
            self._mysql("SELECT 1;")
        return self

    def close(self):
        if self.engine == "sqlite" and self.conn is not None:
            self.conn.commit()
            self.conn.close()
            self.conn = None

    # ---- reading -------------------------------------------------------------------------------------------
    def tables(self):
        if self.engine == "sqlite":
            return {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        out = self._mysql("SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE();")
        return {line for line in out.splitlines() if line}

    def columns(self, table):
        if table not in self._columns:
            if self.engine == "sqlite":
                cols = [r[1] for r in self.conn.execute(f"PRAGMA table_info(`{table}`)")]
            else:
                out = self._mysql("SELECT column_name FROM information_schema.columns WHERE table_schema = "
                                  f"DATABASE() AND table_name = {sql_literal(table)} ORDER BY ordinal_position;")
                cols = [line for line in out.splitlines() if line]
            if not cols:
                raise ToolError(f"{self.spec}: table {table} is missing")
            self._columns[table] = cols
        return self._columns[table]

    def rows(self, table, order=None):
        cols = self.columns(table)
        order_sql = f" ORDER BY {order}" if order else ""
        if self.engine == "sqlite":
            cur = self.conn.execute(f"SELECT * FROM `{table}`{order_sql}")
            return [dict(r) for r in cur]
        pairs = ", ".join(f"'{c}', `{c}`" for c in cols)
        out = self._mysql(f"SELECT JSON_OBJECT({pairs}) FROM `{table}`{order_sql};")
        return [json.loads(line) for line in out.splitlines() if line]

    def layout(self):
        cols = self.columns("tblWorkflowLog")
        if "workflowdocumentcontent" in cols:
            return "6.0"
        if "document" in cols:
            return "5.1"
        raise ToolError(f"{self.spec}: tblWorkflowLog has neither workflowdocumentcontent nor document")

    # ---- writing -------------------------------------------------------------------------------------------
    def run_script(self, sql):
        if self.engine == "sqlite":
            self.conn.executescript(sql)
            self.conn.execute("PRAGMA foreign_keys = ON")
        else:
            self._mysql(sql)

    def insert_all(self, batches):
        """Write BATCHES, a list of (table, [row dict, ...]) in this order, in one transaction."""
        if self.engine == "sqlite":
            with self.conn:
                for table, rows in batches:
                    for r in rows:
                        cols = list(r)
                        self.conn.execute(
                            f"INSERT INTO `{table}` ({', '.join('`%s`' % c for c in cols)}) "
                            f"VALUES ({', '.join('?' for _ in cols)})", [r[c] for c in cols])
            return
        parts = ["SET FOREIGN_KEY_CHECKS = 0;", "START TRANSACTION;"]
        for table, rows in batches:
            for i in range(0, len(rows), 200):
                chunk = rows[i:i + 200]
                if not chunk:
                    continue
                cols = list(chunk[0])
                vals = ",\n".join("(" + ", ".join(sql_literal(r.get(c)) for c in cols) + ")" for r in chunk)
                parts.append(f"INSERT INTO `{table}` ({', '.join('`%s`' % c for c in cols)}) VALUES\n{vals};")
        parts += ["COMMIT;", "SET FOREIGN_KEY_CHECKS = 1;"]
        self._mysql("\n".join(parts))

    def execute(self, sql, params=()):
        """One statement with ? placeholders (SQLite) or literal-substituted (MariaDB)."""
        if self.engine == "sqlite":
            with self.conn:
                self.conn.execute(sql, params)
            return
        pieces = sql.split("?")
        if len(pieces) != len(params) + 1:
            raise ToolError(f"internal: placeholder count in {sql!r}")
        text = pieces[0] + "".join(sql_literal(p) + rest for p, rest in zip(params, pieces[1:]))
        self._mysql(text + ";")

    def create_schema(self, layout, force=False):
        """Create our SeedDMS schema of LAYOUT; refuses a database that already has tables unless FORCE."""
        if self.engine == "sqlite":
            if os.path.exists(self.path):
                if not force:
                    raise ToolError(f"{self.spec}: file exists (use --force to replace it)")
                os.remove(self.path)
            self.open_sqlite(create=True)
        else:
            existing = self.tables()
            if existing:
                if not force:
                    raise ToolError(f"{self.spec}: database is not empty ({len(existing)} tables; --force drops them)")
                self._mysql("SET FOREIGN_KEY_CHECKS = 0;" +
                            "".join(f"DROP TABLE `{t}`;" for t in sorted(existing)))
        self.run_script(schema_sql(self.engine, layout))
        self._columns = {}


# ---- content directory (docs/seeddms-facts.md 4) -----------------------------------------------------------
def doc_dir(doc_id, max_dir_id=0):
    """A document's directory relative to contentDir + contentOffsetDir, with the trailing slash."""
    if max_dir_id:
        return f"{(doc_id - 1) // max_dir_id + 1}/{doc_id}/"
    return f"{doc_id}/"


def version_path(base, doc_id, version, file_type, max_dir_id=0):
    return os.path.join(base, doc_dir(doc_id, max_dir_id) + f"{version}{file_type}")


def md5_file(path):
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            h.update(block)
    return h.hexdigest()


# ---- the workflow model ------------------------------------------------------------------------------------
class Defs:
    """Workflow definitions and group membership of one database, by id."""

    def __init__(self, transitions, tusers, tgroups, members, states):
        self.transitions = {t["id"]: t for t in transitions}
        self.tusers = {}
        for r in tusers:
            self.tusers.setdefault(r["transition"], set()).add(r["userid"])
        self.tgroups = {}
        for r in tgroups:
            self.tgroups.setdefault(r["transition"], []).append((r["groupid"], r["minusers"] or 0))
        self.groups_of = {}
        self.members_of = {}
        for m in members:
            self.groups_of.setdefault(m["userID"], set()).add(m["groupID"])
            self.members_of.setdefault(m["groupID"], set()).add(m["userID"])
        self.states = {s["id"]: s for s in states}

    @classmethod
    def load(cls, db):
        return cls(db.rows("tblWorkflowTransitions"), db.rows("tblWorkflowTransitionUsers"),
                   db.rows("tblWorkflowTransitionGroups"), db.rows("tblGroupMembers"), db.rows("tblWorkflowStates"))

    def leaving(self, workflow, state):
        return sorted(t["id"] for t in self.transitions.values()
                      if t["workflow"] == workflow and t["state"] == state)

    def entering(self, workflow, state):
        return sorted(t["id"] for t in self.transitions.values()
                      if t["workflow"] == workflow and t["nextstate"] == state)

    def may_trigger(self, user, transition, run_log):
        """facts 7.2: no entry of USER for TRANSITION in this run, and listed directly or through a group."""
        if any(e["userid"] == user and e["transition"] == transition for e in run_log):
            return False
        if user in self.tusers.get(transition, ()):
            return True
        return any(user in self.members_of.get(g, ()) for g, _ in self.tgroups.get(transition, ()))

    def offered(self, transition, run_log):
        """The users who may trigger TRANSITION now (facts 7.2), as a sorted list of user ids."""
        cands = set(self.tusers.get(transition, ()))
        for g, _ in self.tgroups.get(transition, ()):
            cands |= self.members_of.get(g, set())
        return sorted(u for u in cands if self.may_trigger(u, transition, run_log))

    def fired(self, transition, run_log):
        """facts 7.2: every listed user has an entry for it in this run and each listed group's count of
        entries by its members reaches minusers; no entry at all means not fired."""
        entries = [e for e in run_log if e["transition"] == transition]
        if not entries:
            return False
        acted = {e["userid"] for e in entries}
        if self.tusers.get(transition, set()) - acted:
            return False
        counts = {}
        for e in entries:
            for g in self.groups_of.get(e["userid"], ()):
                counts[g] = counts.get(g, 0) + 1
        for g, minusers in self.tgroups.get(transition, ()):
            if g not in counts or counts[g] < minusers:
                return False
        return True

    def ends_run(self, state):
        s = self.states.get(state)
        return s is not None and s.get("documentstatus") in (S_RELEASED, S_REJECTED)

    def step(self, workflow, state, run_log):
        """The state after the last entry of RUN_LOG was written in STATE (facts 7.3): triggering a transition
        tries to enter its next state, which happens when that state has no pre-condition function and any
        transition of the workflow leading into it has fired in this run."""
        tr = self.transitions.get(run_log[-1]["transition"])
        if tr is None:
            return state
        nxt = self.states.get(tr["nextstate"])
        if nxt is None or (nxt.get("precondfunc") or ""):
            return state
        if any(self.fired(p, run_log) for p in self.entering(workflow, tr["nextstate"])):
            return tr["nextstate"]
        return state


def replay_runs(defs, initstate, log, active_row=None):
    """Split the 5.1 log of one (document, version, workflow), ordered by id, into runs (facts 8): replay it from
    the initial state; a run ends when it enters a state mapped to released or rejected, and the next entry
    starts a new run. Returns a list of dicts {state (None when ended), log: [entries], end_state}.
    ACTIVE_ROW (the 5.1 tblWorkflowDocumentContent row, if any) makes the last run the active one: its state is
    the row's state, whatever the replay says; with no entries left over, the active run has an empty log."""
    runs = []
    cur = None
    for e in log:
        if cur is None:
            cur = {"log": [], "state": initstate[e["workflow"]] if isinstance(initstate, dict) else initstate}
            runs.append(cur)
        cur["log"].append(e)
        wf = e["workflow"]
        cur["state"] = defs.step(wf, cur["state"], cur["log"])
        if defs.ends_run(cur["state"]):
            cur["end_state"] = cur["state"]
            cur["state"] = None
            cur = None
    if active_row is not None:
        if cur is None:
            cur = {"log": []}
            runs.append(cur)
        cur["state"] = active_row["state"]
        cur["active_row"] = active_row
    else:
        for r in runs:  # a run the log leaves unfinished but that has no row: it was removed or is inconsistent
            if r["state"] is not None:
                r["unfinished"] = True
                r["state"] = None
    return runs
