-- SeedDMS 5.1 layout, SQLite: the tables that differ from 6.0. Load after sqlite-common.sql.
-- Facts: docs/seeddms-facts.md 3.3, 3.5, 3.6 (5.1.23's install/create_tables-sqlite3.sql); our wording.

CREATE TABLE `tblUsers` (
  `id`             INTEGER PRIMARY KEY AUTOINCREMENT,
  `login`          varchar(50) DEFAULT NULL,
  `pwd`            varchar(50) DEFAULT NULL,
  `fullName`       varchar(100) DEFAULT NULL,
  `email`          varchar(70) DEFAULT NULL,
  `language`       varchar(32) NOT NULL,
  `theme`          varchar(32) NOT NULL,
  `comment`        text NOT NULL,
  `role`           INTEGER NOT NULL DEFAULT '0',
  `hidden`         INTEGER NOT NULL DEFAULT '0',
  `pwdExpiration`  TEXT DEFAULT NULL,
  `loginfailures`  INTEGER NOT NULL DEFAULT '0',
  `disabled`       INTEGER NOT NULL DEFAULT '0',
  `quota`          INTEGER,
  `homefolder`     INTEGER DEFAULT NULL REFERENCES `tblFolders` (`id`),
  UNIQUE (`login`)
);

CREATE TABLE `tblDocumentContent` (
  `id`           INTEGER PRIMARY KEY AUTOINCREMENT,
  `document`     INTEGER NOT NULL DEFAULT '0' REFERENCES `tblDocuments` (`id`),
  `version`      INTEGER unsigned NOT NULL,
  `comment`      text,
  `date`         INTEGER DEFAULT NULL,
  `createdBy`    INTEGER DEFAULT NULL,
  `dir`          varchar(255) NOT NULL DEFAULT '',
  `orgFileName`  varchar(150) NOT NULL DEFAULT '',
  `fileType`     varchar(10) NOT NULL DEFAULT '',
  `mimeType`     varchar(100) NOT NULL DEFAULT '',
  `fileSize`     INTEGER,
  `checksum`     char(32),
  UNIQUE (`document`, `version`)
);

CREATE TABLE `tblWorkflows` (
  `id`         INTEGER PRIMARY KEY AUTOINCREMENT,
  `name`       text NOT NULL,
  `initstate`  INTEGER NOT NULL REFERENCES `tblWorkflowStates` (`id`) ON DELETE CASCADE
);

-- 5.1: active workflows only, no key of its own
CREATE TABLE `tblWorkflowDocumentContent` (
  `parentworkflow`  INTEGER DEFAULT 0,
  `workflow`        INTEGER DEFAULT NULL REFERENCES `tblWorkflows` (`id`) ON DELETE CASCADE,
  `document`        INTEGER DEFAULT NULL REFERENCES `tblDocuments` (`id`) ON DELETE CASCADE,
  `version`         INTEGER DEFAULT NULL,
  `state`           INTEGER DEFAULT NULL REFERENCES `tblWorkflowStates` (`id`) ON DELETE CASCADE,
  `date`            datetime NOT NULL
);

CREATE TABLE `tblWorkflowLog` (
  `id`          INTEGER PRIMARY KEY AUTOINCREMENT,
  `document`    INTEGER DEFAULT NULL REFERENCES `tblDocuments` (`id`) ON DELETE CASCADE,
  `version`     INTEGER DEFAULT NULL,
  `workflow`    INTEGER DEFAULT NULL REFERENCES `tblWorkflows` (`id`) ON DELETE CASCADE,
  `userid`      INTEGER DEFAULT NULL REFERENCES `tblUsers` (`id`) ON DELETE CASCADE,
  `transition`  INTEGER DEFAULT NULL REFERENCES `tblWorkflowTransitions` (`id`) ON DELETE CASCADE,
  `date`        datetime NOT NULL,
  `comment`     text
);
