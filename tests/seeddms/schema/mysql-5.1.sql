-- SeedDMS 5.1 layout, MySQL/MariaDB: the tables that differ from 6.0. Load after mysql-common.sql.
-- Facts: docs/seeddms-facts.md 3.3, 3.5, 3.6 (5.1.23's install/create_tables-innodb.sql); our wording.

-- role: 0 user, 1 admin, 2 guest (no tblRoles in 5.1)
CREATE TABLE `tblUsers` (
  `id`             int(11)      NOT NULL AUTO_INCREMENT,
  `login`          varchar(50)  DEFAULT NULL,
  `pwd`            varchar(50)  DEFAULT NULL,
  `fullName`       varchar(100) DEFAULT NULL,
  `email`          varchar(70)  DEFAULT NULL,
  `language`       varchar(32)  NOT NULL,
  `theme`          varchar(32)  NOT NULL,
  `comment`        text         NOT NULL,
  `role`           smallint(1)  NOT NULL DEFAULT '0',
  `hidden`         smallint(1)  NOT NULL DEFAULT '0',
  `pwdExpiration`  datetime     DEFAULT NULL,
  `loginfailures`  tinyint(4)   NOT NULL DEFAULT '0',
  `disabled`       smallint(1)  NOT NULL DEFAULT '0',
  `quota`          bigint(20)   DEFAULT NULL,
  `homefolder`     int(11)      DEFAULT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `login` (`login`),
  CONSTRAINT `fk_user_homefolder` FOREIGN KEY (`homefolder`) REFERENCES `tblFolders` (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

-- a version; its file is <contentDir><contentOffsetDir>/<docdir>/<version><fileType>
CREATE TABLE `tblDocumentContent` (
  `id`           int(11)              NOT NULL AUTO_INCREMENT,
  `document`     int(11)              NOT NULL DEFAULT '0',
  `version`      smallint(5) unsigned NOT NULL,
  `comment`      text,
  `date`         int(12)              DEFAULT NULL,
  `createdBy`    int(11)              DEFAULT NULL,
  `dir`          varchar(255)         NOT NULL DEFAULT '',
  `orgFileName`  varchar(150)         NOT NULL DEFAULT '',
  `fileType`     varchar(10)          NOT NULL DEFAULT '',
  `mimeType`     varchar(100)         NOT NULL DEFAULT '',
  `fileSize`     bigint(20)           DEFAULT NULL,
  `checksum`     char(32)             DEFAULT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `document` (`document`, `version`),
  CONSTRAINT `fk_content_document` FOREIGN KEY (`document`) REFERENCES `tblDocuments` (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

CREATE TABLE `tblWorkflows` (
  `id`         int(11) NOT NULL AUTO_INCREMENT,
  `name`       text    NOT NULL,
  `initstate`  int(11) NOT NULL,
  PRIMARY KEY (`id`),
  KEY `fk_workflow_initstate` (`initstate`),
  CONSTRAINT `fk_workflow_initstate` FOREIGN KEY (`initstate`) REFERENCES `tblWorkflowStates` (`id`) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

-- 5.1: a row only while a workflow is active on a version; no key of its own
CREATE TABLE `tblWorkflowDocumentContent` (
  `parentworkflow`  int(11)     DEFAULT '0',
  `workflow`        int(11)     DEFAULT NULL,
  `document`        int(11)     DEFAULT NULL,
  `version`         smallint(5) DEFAULT NULL,
  `state`           int(11)     DEFAULT NULL,
  `date`            datetime    NOT NULL,
  KEY `fk_run_document` (`document`),
  KEY `fk_run_workflow` (`workflow`),
  KEY `fk_run_state` (`state`),
  CONSTRAINT `fk_run_document` FOREIGN KEY (`document`) REFERENCES `tblDocuments` (`id`) ON DELETE CASCADE,
  CONSTRAINT `fk_run_state` FOREIGN KEY (`state`) REFERENCES `tblWorkflowStates` (`id`) ON DELETE CASCADE,
  CONSTRAINT `fk_run_workflow` FOREIGN KEY (`workflow`) REFERENCES `tblWorkflows` (`id`) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

-- 5.1: log rows name (document, version, workflow), not a run
CREATE TABLE `tblWorkflowLog` (
  `id`          int(11)     NOT NULL AUTO_INCREMENT,
  `document`    int(11)     DEFAULT NULL,
  `version`     smallint(5) DEFAULT NULL,
  `workflow`    int(11)     DEFAULT NULL,
  `userid`      int(11)     DEFAULT NULL,
  `transition`  int(11)     DEFAULT NULL,
  `date`        datetime    NOT NULL,
  `comment`     text,
  PRIMARY KEY (`id`),
  KEY `fk_log_document` (`document`),
  KEY `fk_log_workflow` (`workflow`),
  KEY `fk_log_user` (`userid`),
  KEY `fk_log_transition` (`transition`),
  CONSTRAINT `fk_log_document` FOREIGN KEY (`document`) REFERENCES `tblDocuments` (`id`) ON DELETE CASCADE,
  CONSTRAINT `fk_log_transition` FOREIGN KEY (`transition`) REFERENCES `tblWorkflowTransitions` (`id`) ON DELETE CASCADE,
  CONSTRAINT `fk_log_user` FOREIGN KEY (`userid`) REFERENCES `tblUsers` (`id`) ON DELETE CASCADE,
  CONSTRAINT `fk_log_workflow` FOREIGN KEY (`workflow`) REFERENCES `tblWorkflows` (`id`) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

SET FOREIGN_KEY_CHECKS = 1;
