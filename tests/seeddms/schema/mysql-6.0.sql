-- SeedDMS 6.0 layout, MySQL/MariaDB: the tables that differ from 5.1. Load after mysql-common.sql.
-- Facts: docs/seeddms-facts.md 3.3, 3.5, 3.6 (6.0.34's install/create_tables-innodb.sql); our wording.

-- rows 1 Admin (role 1), 2 Guest (2), 3 User (0) are written with the install data, not here
CREATE TABLE `tblRoles` (
  `id`        int(11)     NOT NULL AUTO_INCREMENT,
  `name`      varchar(50) DEFAULT NULL,
  `role`      smallint(1) NOT NULL DEFAULT '0',
  `noaccess`  varchar(30) NOT NULL DEFAULT '',
  PRIMARY KEY (`id`),
  UNIQUE KEY `name` (`name`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

-- 6.0: secret added after pwd; role is a tblRoles id
CREATE TABLE `tblUsers` (
  `id`             int(11)      NOT NULL AUTO_INCREMENT,
  `login`          varchar(50)  DEFAULT NULL,
  `pwd`            varchar(50)  DEFAULT NULL,
  `secret`         varchar(50)  DEFAULT NULL,
  `fullName`       varchar(100) DEFAULT NULL,
  `email`          varchar(70)  DEFAULT NULL,
  `language`       varchar(32)  NOT NULL,
  `theme`          varchar(32)  NOT NULL,
  `comment`        text         NOT NULL,
  `role`           int(11)      NOT NULL,
  `hidden`         smallint(1)  NOT NULL DEFAULT '0',
  `pwdExpiration`  datetime     DEFAULT NULL,
  `loginfailures`  tinyint(4)   NOT NULL DEFAULT '0',
  `disabled`       smallint(1)  NOT NULL DEFAULT '0',
  `quota`          bigint(20)   DEFAULT NULL,
  `homefolder`     int(11)      DEFAULT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `login` (`login`),
  CONSTRAINT `fk_user_role` FOREIGN KEY (`role`) REFERENCES `tblRoles` (`id`),
  CONSTRAINT `fk_user_homefolder` FOREIGN KEY (`homefolder`) REFERENCES `tblFolders` (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

-- 6.0: revisiondate added at the end
CREATE TABLE `tblDocumentContent` (
  `id`            int(11)              NOT NULL AUTO_INCREMENT,
  `document`      int(11)              NOT NULL DEFAULT '0',
  `version`       smallint(5) unsigned NOT NULL,
  `comment`       text,
  `date`          int(12)              DEFAULT NULL,
  `createdBy`     int(11)              DEFAULT NULL,
  `dir`           varchar(255)         NOT NULL DEFAULT '',
  `orgFileName`   varchar(150)         NOT NULL DEFAULT '',
  `fileType`      varchar(10)          NOT NULL DEFAULT '',
  `mimeType`      varchar(100)         NOT NULL DEFAULT '',
  `fileSize`      bigint(20)           DEFAULT NULL,
  `checksum`      char(32)             DEFAULT NULL,
  `revisiondate`  datetime             DEFAULT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `document` (`document`, `version`),
  CONSTRAINT `fk_content_document` FOREIGN KEY (`document`) REFERENCES `tblDocuments` (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

-- 6.0: layoutdata (the graph editor's positions)
CREATE TABLE `tblWorkflows` (
  `id`          int(11) NOT NULL AUTO_INCREMENT,
  `name`        text    NOT NULL,
  `initstate`   int(11) NOT NULL,
  `layoutdata`  text    DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `fk_workflow_initstate` (`initstate`),
  CONSTRAINT `fk_workflow_initstate` FOREIGN KEY (`initstate`) REFERENCES `tblWorkflowStates` (`id`) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

-- 6.0: one row per run with its own id; state NULL once the run has ended; parent = the parent run
CREATE TABLE `tblWorkflowDocumentContent` (
  `id`        int(11)     NOT NULL AUTO_INCREMENT,
  `parent`    int(11)     DEFAULT NULL,
  `workflow`  int(11)     DEFAULT NULL,
  `document`  int(11)     DEFAULT NULL,
  `version`   smallint(5) DEFAULT NULL,
  `state`     int(11)     DEFAULT NULL,
  `date`      datetime    NOT NULL,
  PRIMARY KEY (`id`),
  KEY `fk_run_document` (`document`),
  KEY `fk_run_workflow` (`workflow`),
  KEY `fk_run_state` (`state`),
  CONSTRAINT `fk_run_document` FOREIGN KEY (`document`) REFERENCES `tblDocuments` (`id`) ON DELETE CASCADE,
  CONSTRAINT `fk_run_state` FOREIGN KEY (`state`) REFERENCES `tblWorkflowStates` (`id`) ON DELETE CASCADE,
  CONSTRAINT `fk_run_parent` FOREIGN KEY (`parent`) REFERENCES `tblWorkflowDocumentContent` (`id`) ON DELETE CASCADE,
  CONSTRAINT `fk_run_workflow` FOREIGN KEY (`workflow`) REFERENCES `tblWorkflows` (`id`) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

-- 6.0: the log names its run
CREATE TABLE `tblWorkflowLog` (
  `id`                       int(11)  NOT NULL AUTO_INCREMENT,
  `workflowdocumentcontent`  int(11)  NOT NULL DEFAULT '0',
  `userid`                   int(11)  DEFAULT NULL,
  `transition`               int(11)  DEFAULT NULL,
  `date`                     datetime NOT NULL,
  `comment`                  text,
  PRIMARY KEY (`id`),
  KEY `fk_log_user` (`userid`),
  KEY `fk_log_transition` (`transition`),
  KEY `fk_log_run` (`workflowdocumentcontent`),
  CONSTRAINT `fk_log_run` FOREIGN KEY (`workflowdocumentcontent`) REFERENCES `tblWorkflowDocumentContent` (`id`) ON DELETE CASCADE,
  CONSTRAINT `fk_log_transition` FOREIGN KEY (`transition`) REFERENCES `tblWorkflowTransitions` (`id`) ON DELETE CASCADE,
  CONSTRAINT `fk_log_user` FOREIGN KEY (`userid`) REFERENCES `tblUsers` (`id`) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

SET FOREIGN_KEY_CHECKS = 1;
