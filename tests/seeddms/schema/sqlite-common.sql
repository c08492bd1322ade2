-- SeedDMS tables that are the same in the 5.1 and the 6.0 layout, SQLite flavour.
-- Written for ferry's tests from the facts in docs/seeddms-facts.md (3.2-3.7); column names, declared types
-- (they decide SQLite's column affinity), defaults, unique keys and references are those of SeedDMS's
-- install/create_tables-sqlite3.sql (5.1.23 and 6.0.34); the wording is ours. Load it first, then
-- sqlite-5.1.sql or sqlite-6.0.sql. SeedDMS turns PRAGMA foreign_keys on for every connection.

CREATE TABLE `tblACLs` (
  `id`          INTEGER PRIMARY KEY AUTOINCREMENT,
  `target`      INTEGER NOT NULL DEFAULT '0',
  `targetType`  INTEGER NOT NULL DEFAULT '0',
  `userID`      INTEGER NOT NULL DEFAULT '-1',
  `groupID`     INTEGER NOT NULL DEFAULT '-1',
  `mode`        INTEGER NOT NULL DEFAULT '0'
);

CREATE TABLE `tblAttributeDefinitions` (
  `id`         INTEGER PRIMARY KEY AUTOINCREMENT,
  `name`       varchar(100) DEFAULT NULL,
  `objtype`    INTEGER NOT NULL DEFAULT '0',
  `type`       INTEGER NOT NULL DEFAULT '0',
  `multiple`   INTEGER NOT NULL DEFAULT '0',
  `minvalues`  INTEGER NOT NULL DEFAULT '0',
  `maxvalues`  INTEGER NOT NULL DEFAULT '0',
  `valueset`   TEXT DEFAULT NULL,
  `regex`      TEXT DEFAULT NULL,
  UNIQUE (`name`)
);

CREATE TABLE `tblFolders` (
  `id`             INTEGER PRIMARY KEY AUTOINCREMENT,
  `name`           varchar(70) DEFAULT NULL,
  `parent`         INTEGER DEFAULT NULL,
  `folderList`     text NOT NULL,
  `comment`        text,
  `date`           INTEGER DEFAULT NULL,
  `owner`          INTEGER DEFAULT NULL REFERENCES `tblUsers` (`id`),
  `inheritAccess`  INTEGER NOT NULL DEFAULT '1',
  `defaultAccess`  INTEGER NOT NULL DEFAULT '0',
  `sequence`       double NOT NULL DEFAULT '0'
);

CREATE TABLE `tblFolderAttributes` (
  `id`       INTEGER PRIMARY KEY AUTOINCREMENT,
  `folder`   INTEGER DEFAULT NULL REFERENCES `tblFolders` (`id`) ON DELETE CASCADE,
  `attrdef`  INTEGER DEFAULT NULL REFERENCES `tblAttributeDefinitions` (`id`),
  `value`    text DEFAULT NULL,
  UNIQUE (`folder`, `attrdef`)
);

CREATE TABLE `tblDocuments` (
  `id`             INTEGER PRIMARY KEY AUTOINCREMENT,
  `name`           varchar(150) DEFAULT NULL,
  `comment`        text,
  `date`           INTEGER DEFAULT NULL,
  `expires`        INTEGER DEFAULT NULL,
  `owner`          INTEGER DEFAULT NULL REFERENCES `tblUsers` (`id`),
  `folder`         INTEGER DEFAULT NULL REFERENCES `tblFolders` (`id`),
  `folderList`     text NOT NULL,
  `inheritAccess`  INTEGER NOT NULL DEFAULT '1',
  `defaultAccess`  INTEGER NOT NULL DEFAULT '0',
  `locked`         INTEGER NOT NULL DEFAULT '-1',
  `keywords`       text NOT NULL,
  `sequence`       double NOT NULL DEFAULT '0'
);

CREATE TABLE `tblDocumentAttributes` (
  `id`        INTEGER PRIMARY KEY AUTOINCREMENT,
  `document`  INTEGER DEFAULT NULL REFERENCES `tblDocuments` (`id`) ON DELETE CASCADE,
  `attrdef`   INTEGER DEFAULT NULL REFERENCES `tblAttributeDefinitions` (`id`),
  `value`     text DEFAULT NULL,
  UNIQUE (`document`, `attrdef`)
);

CREATE TABLE `tblDocumentContentAttributes` (
  `id`       INTEGER PRIMARY KEY AUTOINCREMENT,
  `content`  INTEGER DEFAULT NULL REFERENCES `tblDocumentContent` (`id`) ON DELETE CASCADE,
  `attrdef`  INTEGER DEFAULT NULL REFERENCES `tblAttributeDefinitions` (`id`),
  `value`    text DEFAULT NULL,
  UNIQUE (`content`, `attrdef`)
);

CREATE TABLE `tblDocumentStatus` (
  `statusID`    INTEGER PRIMARY KEY AUTOINCREMENT,
  `documentID`  INTEGER NOT NULL DEFAULT '0' REFERENCES `tblDocuments` (`id`) ON DELETE CASCADE,
  `version`     INTEGER unsigned NOT NULL DEFAULT '0',
  UNIQUE (`documentID`, `version`)
);

CREATE TABLE `tblDocumentStatusLog` (
  `statusLogID`  INTEGER PRIMARY KEY AUTOINCREMENT,
  `statusID`     INTEGER NOT NULL DEFAULT '0' REFERENCES `tblDocumentStatus` (`statusID`) ON DELETE CASCADE,
  `status`       INTEGER NOT NULL DEFAULT '0',
  `comment`      text NOT NULL,
  `date`         TEXT NOT NULL,
  `userID`       INTEGER NOT NULL DEFAULT '0' REFERENCES `tblUsers` (`id`) ON DELETE CASCADE
);

CREATE TABLE `tblGroups` (
  `id`       INTEGER PRIMARY KEY AUTOINCREMENT,
  `name`     varchar(50) DEFAULT NULL,
  `comment`  text NOT NULL
);

CREATE TABLE `tblGroupMembers` (
  `groupID`  INTEGER NOT NULL DEFAULT '0' REFERENCES `tblGroups` (`id`) ON DELETE CASCADE,
  `userID`   INTEGER NOT NULL DEFAULT '0' REFERENCES `tblUsers` (`id`) ON DELETE CASCADE,
  `manager`  INTEGER NOT NULL DEFAULT '0',
  UNIQUE (`groupID`, `userID`)
);

CREATE TABLE `tblWorkflowStates` (
  `id`              INTEGER PRIMARY KEY AUTOINCREMENT,
  `name`            text NOT NULL,
  `visibility`      INTEGER DEFAULT 0,
  `maxtime`         INTEGER DEFAULT 0,
  `precondfunc`     text DEFAULT NULL,
  `documentstatus`  INTEGER DEFAULT NULL
);

CREATE TABLE `tblWorkflowActions` (
  `id`    INTEGER PRIMARY KEY AUTOINCREMENT,
  `name`  text NOT NULL
);

CREATE TABLE `tblWorkflowTransitions` (
  `id`         INTEGER PRIMARY KEY AUTOINCREMENT,
  `workflow`   INTEGER DEFAULT NULL REFERENCES `tblWorkflows` (`id`) ON DELETE CASCADE,
  `state`      INTEGER DEFAULT NULL REFERENCES `tblWorkflowStates` (`id`) ON DELETE CASCADE,
  `action`     INTEGER DEFAULT NULL REFERENCES `tblWorkflowActions` (`id`) ON DELETE CASCADE,
  `nextstate`  INTEGER DEFAULT NULL REFERENCES `tblWorkflowStates` (`id`) ON DELETE CASCADE,
  `maxtime`    INTEGER DEFAULT 0
);

CREATE TABLE `tblWorkflowTransitionUsers` (
  `id`          INTEGER PRIMARY KEY AUTOINCREMENT,
  `transition`  INTEGER DEFAULT NULL REFERENCES `tblWorkflowTransitions` (`id`) ON DELETE CASCADE,
  `userid`      INTEGER DEFAULT NULL REFERENCES `tblUsers` (`id`) ON DELETE CASCADE
);

CREATE TABLE `tblWorkflowTransitionGroups` (
  `id`          INTEGER PRIMARY KEY AUTOINCREMENT,
  `transition`  INTEGER DEFAULT NULL REFERENCES `tblWorkflowTransitions` (`id`) ON DELETE CASCADE,
  `groupid`     INTEGER DEFAULT NULL REFERENCES `tblGroups` (`id`) ON DELETE CASCADE,
  `minusers`    INTEGER DEFAULT NULL
);

CREATE TABLE `tblVersion` (
  `date`      TEXT NOT NULL,
  `major`     INTEGER,
  `minor`     INTEGER,
  `subminor`  INTEGER
);
