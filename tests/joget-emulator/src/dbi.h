/* joget-emulator: internals of the database layer shared by db.c (PostgreSQL) and db_mariadb.c (MariaDB). */
#ifndef EMU_DBI_H
#define EMU_DBI_H
#include "emu.h"
#include <libpq-fe.h>
#include <mysql.h>

struct dbconn {
    PGconn *pg;
    MYSQL *my, *my_ddl;     /* MariaDB: the connection and the side connection for schema changes */
    int in_tx, tx_failed;   /* MariaDB: a statement of the open transaction failed -> it can only roll back */
    char prep[64][32];      /* PostgreSQL: statements prepared on this connection */
    int nprep;
    struct { unsigned h; char *sql; } autop[512]; /* PostgreSQL: db_query's statements prepared by text */
};

struct dbres {
    PGresult *pg;
    MYSQL_RES *my;
    const char **v;         /* MariaDB: nrows * ncols values (NULL = SQL NULL) */
    char **names;
    char *arena;            /* MariaDB: converted values (bit, dates) */
    int nrows, ncols;
    long affected;
};

/* MariaDB backend (db_mariadb.c) */
int my_parse_url(const char *url, char **user, char **pw, char **host, unsigned *port, char **db, char **socket);
MYSQL *my_connect(int side);           /* side: the DDL connection (autocommit, short lock waits) */
dbres *my_query(dbconn *c, MYSQL *m, const char *sql, int n, const char *const *p);
int my_bulk_load(dbconn *c, dbbulk *b);
void my_free_result(dbres *r);
extern char *g_my_user, *g_my_pw, *g_my_host, *g_my_db, *g_my_socket;
extern unsigned g_my_port;

#endif
