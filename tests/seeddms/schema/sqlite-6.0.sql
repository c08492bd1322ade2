-- SeedDMS 6.0 layout, SQLite: the tables that differ from 5.1. Load after sqlite-common.sql.
-- Facts: docs/seeddms-facts.md 3.3, 3.5, 3.6 (6.0.34's install/create_tables-sqlite3.sql); our wording.

CREATE TABLE `tblRoles` (
  `id`        INTEGER PRIMARY KEY AUTOINCREMENT,
  `name`      varchar(50) DEFAULT NULL,
  `role`      INTEGER NOT NULL DEFAULT '0',
  `noaccess`  varchar(30) NOT NULL DEFAULT '',
  UNIQUE (`name`)
);

-- a fresh 6.0 database has secret after pwd; one updated from 5.1 has it last (facts 3.3)
CREATE TABLE `tblUsers` (
  `id`             INTEGER PRIMARY KEY AUTOINCREMENT,
  `login`          varchar(50) DEFAULT NULL,
  `pwd`            varchar(50) DEFAULT NULL,
  `secret`         varchar(50) DEFAULT NULL,
  `fullName`       varchar(100) DEFAULT NULL,
  `email`          varchar(70) DEFAULT NULL,
  `language`       varchar(32) NOT NULL,
  `theme`          varchar(32) NOT NULL,
  `comment`        text NOT NULL,
  `role`           INTEGER NOT NULL REFERENCES `tblRoles` (`id`),
  `hidden`         INTEGER NOT NULL DEFAULT '0',
  `pwdExpiration`  TEXT DEFAULT NULL,
  `loginfailures`  INTEGER NOT NULL DEFAULT '0',
  `disabled`       INTEGER NOT NULL DEFAULT '0',
  `quota`          INTEGER,
  `homefolder`     INTEGER DEFAULT NULL REFERENCES `tblFolders` (`id`),
  UNIQUE (`login`)
);

CREATE TABLE `tblDocumentContent` (
  `id`            INTEGER PRIMARY KEY AUTOINCREMENT,
  `document`      INTEGER NOT NULL DEFAULT '0' REFERENCES `tblDocuments` (`id`),
  `version`       INTEGER unsigned NOT NULL,
  `comment`       text,
  `date`          INTEGER DEFAULT NULL,
  `createdBy`     INTEGER DEFAULT NULL,
  `dir`           varchar(255) NOT NULL DEFAULT '',
  `orgFileName`   varchar(150) NOT NULL DEFAULT '',
  `fileType`      varchar(10) NOT NULL DEFAULT '',
  `mimeType`      varchar(100) NOT NULL DEFAULT '',
  `fileSize`      INTEGER,
  `checksum`      char(32),
  `revisiondate`  TEXT DEFAULT NULL,
  UNIQUE (`document`, `version`)
);

CREATE TABLE `tblWorkflows` (
  `id`          INTEGER PRIMARY KEY AUTOINCREMENT,
  `name`        text NOT NULL,
  `initstate`   INTEGER NOT NULL REFERENCES `tblWorkflowStates` (`id`) ON DELETE CASCADE,
  `layoutdata`  text DEFAULT NULL
);

-- 6.0: one row per run; state NULL once ended; parent = the parent run's id
CREATE TABLE `tblWorkflowDocumentContent` (
  `id`        INTEGER PRIMARY KEY AUTOINCREMENT,
  `parent`    INTEGER DEFAULT NULL REFERENCES `tblWorkflowDocumentContent` (`id`) ON DELETE CASCADE,
  `workflow`  INTEGER DEFAULT NULL REFERENCES `tblWorkflows` (`id`) ON DELETE CASCADE,
  `document`  INTEGER DEFAULT NULL REFERENCES `tblDocuments` (`id`) ON DELETE CASCADE,
  `version`   INTEGER DEFAULT NULL,
  `state`     INTEGER DEFAULT NULL REFERENCES `tblWorkflowStates` (`id`) ON DELETE CASCADE,
  `date`      datetime NOT NULL
);

-- 6.0: nullable here, NOT NULL DEFAULT 0 on MySQL
CREATE TABLE `tblWorkflowLog` (
  `id`                       INTEGER PRIMARY KEY AUTOINCREMENT,
  `workflowdocumentcontent`  INTEGER DEFAULT NULL REFERENCES `tblWorkflowDocumentContent` (`id`) ON DELETE CASCADE,
  `userid`                   INTEGER DEFAULT NULL REFERENCES `tblUsers` (`id`) ON DELETE CASCADE,
  `transition`               INTEGER DEFAULT NULL REFERENCES `tblWorkflowTransitions` (`id`) ON DELETE CASCADE,
  `date`                     datetime NOT NULL,
  `comment`                  text
);

-- 6.0 (not 5.1) indexes the status log by its status row on SQLite
CREATE INDEX `indDocumentStatusLogStatusID` ON `tblDocumentStatusLog` (`StatusID`);
