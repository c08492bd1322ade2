-- SeedDMS tables that are the same in the 5.1 and the 6.0 layout, MySQL/MariaDB flavour.
-- Written for ferry's tests from the facts in docs/seeddms-facts.md (3.2-3.7); column names, types, defaults,
-- keys and ON DELETE rules are those of SeedDMS's install/create_tables-innodb.sql (5.1.23 and 6.0.34), the
-- wording and the constraint names are ours. Load it first, then mysql-5.1.sql or mysql-6.0.sql.
-- Foreign-key checks are off while the tables are created: users and folders refer to each other.
SET FOREIGN_KEY_CHECKS = 0;

-- access rights of folders (targetType 1) and documents (2); userID or groupID, -1 when unused
CREATE TABLE `tblACLs` (
  `id`          int(11)    NOT NULL AUTO_INCREMENT,
  `target`      int(11)    NOT NULL DEFAULT '0',
  `targetType`  tinyint(4) NOT NULL DEFAULT '0',
  `userID`      int(11)    NOT NULL DEFAULT '-1',
  `groupID`     int(11)    NOT NULL DEFAULT '-1',
  `mode`        tinyint(4) NOT NULL DEFAULT '0',
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

CREATE TABLE `tblAttributeDefinitions` (
  `id`          int(11)      NOT NULL AUTO_INCREMENT,
  `name`        varchar(100) DEFAULT NULL,
  `objtype`     tinyint(4)   NOT NULL DEFAULT '0',
  `type`        tinyint(4)   NOT NULL DEFAULT '0',
  `multiple`    tinyint(4)   NOT NULL DEFAULT '0',
  `minvalues`   int(11)      NOT NULL DEFAULT '0',
  `maxvalues`   int(11)      NOT NULL DEFAULT '0',
  `valueset`    text         DEFAULT NULL,
  `regex`       text         DEFAULT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `name` (`name`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

-- the root folder is row 1 with parent 0; folderList holds the ancestors as ":1:5:"
CREATE TABLE `tblFolders` (
  `id`             int(11)     NOT NULL AUTO_INCREMENT,
  `name`           varchar(70) DEFAULT NULL,
  `parent`         int(11)     DEFAULT NULL,
  `folderList`     text        NOT NULL,
  `comment`        text,
  `date`           int(12)     DEFAULT NULL,
  `owner`          int(11)     DEFAULT NULL,
  `inheritAccess`  tinyint(1)  NOT NULL DEFAULT '1',
  `defaultAccess`  tinyint(4)  NOT NULL DEFAULT '0',
  `sequence`       double      NOT NULL DEFAULT '0',
  PRIMARY KEY (`id`),
  KEY `parent` (`parent`),
  KEY `fk_folder_owner` (`owner`),
  CONSTRAINT `fk_folder_owner` FOREIGN KEY (`owner`) REFERENCES `tblUsers` (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

CREATE TABLE `tblFolderAttributes` (
  `id`       int(11) NOT NULL AUTO_INCREMENT,
  `folder`   int(11) DEFAULT NULL,
  `attrdef`  int(11) DEFAULT NULL,
  `value`    text,
  PRIMARY KEY (`id`),
  UNIQUE KEY `folder` (`folder`, `attrdef`),
  KEY `fk_folderattr_def` (`attrdef`),
  CONSTRAINT `fk_folderattr_def` FOREIGN KEY (`attrdef`) REFERENCES `tblAttributeDefinitions` (`id`),
  CONSTRAINT `fk_folderattr_folder` FOREIGN KEY (`folder`) REFERENCES `tblFolders` (`id`) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

-- locked: -1 when not locked, else the user id
CREATE TABLE `tblDocuments` (
  `id`             int(11)      NOT NULL AUTO_INCREMENT,
  `name`           varchar(150) DEFAULT NULL,
  `comment`        text,
  `date`           int(12)      DEFAULT NULL,
  `expires`        int(12)      DEFAULT NULL,
  `owner`          int(11)      DEFAULT NULL,
  `folder`         int(11)      DEFAULT NULL,
  `folderList`     text         NOT NULL,
  `inheritAccess`  tinyint(1)   NOT NULL DEFAULT '1',
  `defaultAccess`  tinyint(4)   NOT NULL DEFAULT '0',
  `locked`         int(11)      NOT NULL DEFAULT '-1',
  `keywords`       text         NOT NULL,
  `sequence`       double       NOT NULL DEFAULT '0',
  PRIMARY KEY (`id`),
  KEY `fk_document_folder` (`folder`),
  KEY `fk_document_owner` (`owner`),
  CONSTRAINT `fk_document_folder` FOREIGN KEY (`folder`) REFERENCES `tblFolders` (`id`),
  CONSTRAINT `fk_document_owner` FOREIGN KEY (`owner`) REFERENCES `tblUsers` (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

CREATE TABLE `tblDocumentAttributes` (
  `id`        int(11) NOT NULL AUTO_INCREMENT,
  `document`  int(11) DEFAULT NULL,
  `attrdef`   int(11) DEFAULT NULL,
  `value`     text,
  PRIMARY KEY (`id`),
  UNIQUE KEY `document` (`document`, `attrdef`),
  KEY `fk_docattr_def` (`attrdef`),
  CONSTRAINT `fk_docattr_def` FOREIGN KEY (`attrdef`) REFERENCES `tblAttributeDefinitions` (`id`),
  CONSTRAINT `fk_docattr_document` FOREIGN KEY (`document`) REFERENCES `tblDocuments` (`id`) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

-- content = tblDocumentContent.id (a version, not a document)
CREATE TABLE `tblDocumentContentAttributes` (
  `id`       int(11) NOT NULL AUTO_INCREMENT,
  `content`  int(11) DEFAULT NULL,
  `attrdef`  int(11) DEFAULT NULL,
  `value`    text,
  PRIMARY KEY (`id`),
  UNIQUE KEY `content` (`content`, `attrdef`),
  KEY `fk_contentattr_def` (`attrdef`),
  CONSTRAINT `fk_contentattr_def` FOREIGN KEY (`attrdef`) REFERENCES `tblAttributeDefinitions` (`id`),
  CONSTRAINT `fk_contentattr_content` FOREIGN KEY (`content`) REFERENCES `tblDocumentContent` (`id`) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

-- a version's status history: the newest log row is its status (3 = in workflow)
CREATE TABLE `tblDocumentStatus` (
  `statusID`    int(11)              NOT NULL AUTO_INCREMENT,
  `documentID`  int(11)              NOT NULL DEFAULT '0',
  `version`     smallint(5) unsigned NOT NULL DEFAULT '0',
  PRIMARY KEY (`statusID`),
  UNIQUE KEY `documentID` (`documentID`, `version`),
  CONSTRAINT `fk_status_document` FOREIGN KEY (`documentID`) REFERENCES `tblDocuments` (`id`) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

CREATE TABLE `tblDocumentStatusLog` (
  `statusLogID`  int(11)    NOT NULL AUTO_INCREMENT,
  `statusID`     int(11)    NOT NULL DEFAULT '0',
  `status`       tinyint(4) NOT NULL DEFAULT '0',
  `comment`      text       NOT NULL,
  `date`         datetime   NOT NULL,
  `userID`       int(11)    NOT NULL DEFAULT '0',
  PRIMARY KEY (`statusLogID`),
  KEY `statusID` (`statusID`),
  KEY `fk_statuslog_user` (`userID`),
  CONSTRAINT `fk_statuslog_status` FOREIGN KEY (`statusID`) REFERENCES `tblDocumentStatus` (`statusID`) ON DELETE CASCADE,
  CONSTRAINT `fk_statuslog_user` FOREIGN KEY (`userID`) REFERENCES `tblUsers` (`id`) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

CREATE TABLE `tblGroups` (
  `id`       int(11)     NOT NULL AUTO_INCREMENT,
  `name`     varchar(50) DEFAULT NULL,
  `comment`  text        NOT NULL,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

-- no primary key, only the unique pair
CREATE TABLE `tblGroupMembers` (
  `groupID`  int(11)     NOT NULL DEFAULT '0',
  `userID`   int(11)     NOT NULL DEFAULT '0',
  `manager`  smallint(1) NOT NULL DEFAULT '0',
  UNIQUE KEY `groupID` (`groupID`, `userID`),
  KEY `fk_member_user` (`userID`),
  CONSTRAINT `fk_member_group` FOREIGN KEY (`groupID`) REFERENCES `tblGroups` (`id`) ON DELETE CASCADE,
  CONSTRAINT `fk_member_user` FOREIGN KEY (`userID`) REFERENCES `tblUsers` (`id`) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

-- states are global (no workflow column); documentstatus: the version status set on entering the state
CREATE TABLE `tblWorkflowStates` (
  `id`              int(11)     NOT NULL AUTO_INCREMENT,
  `name`            text        NOT NULL,
  `visibility`      smallint(5) DEFAULT '0',
  `maxtime`         int(11)     DEFAULT '0',
  `precondfunc`     text,
  `documentstatus`  smallint(5) DEFAULT NULL,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

CREATE TABLE `tblWorkflowActions` (
  `id`    int(11) NOT NULL AUTO_INCREMENT,
  `name`  text    NOT NULL,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

CREATE TABLE `tblWorkflowTransitions` (
  `id`         int(11) NOT NULL AUTO_INCREMENT,
  `workflow`   int(11) DEFAULT NULL,
  `state`      int(11) DEFAULT NULL,
  `action`     int(11) DEFAULT NULL,
  `nextstate`  int(11) DEFAULT NULL,
  `maxtime`    int(11) DEFAULT '0',
  PRIMARY KEY (`id`),
  KEY `fk_transition_workflow` (`workflow`),
  KEY `fk_transition_state` (`state`),
  KEY `fk_transition_action` (`action`),
  KEY `fk_transition_nextstate` (`nextstate`),
  CONSTRAINT `fk_transition_action` FOREIGN KEY (`action`) REFERENCES `tblWorkflowActions` (`id`) ON DELETE CASCADE,
  CONSTRAINT `fk_transition_nextstate` FOREIGN KEY (`nextstate`) REFERENCES `tblWorkflowStates` (`id`) ON DELETE CASCADE,
  CONSTRAINT `fk_transition_state` FOREIGN KEY (`state`) REFERENCES `tblWorkflowStates` (`id`) ON DELETE CASCADE,
  CONSTRAINT `fk_transition_workflow` FOREIGN KEY (`workflow`) REFERENCES `tblWorkflows` (`id`) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

CREATE TABLE `tblWorkflowTransitionUsers` (
  `id`          int(11) NOT NULL AUTO_INCREMENT,
  `transition`  int(11) DEFAULT NULL,
  `userid`      int(11) DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `fk_transuser_transition` (`transition`),
  KEY `fk_transuser_user` (`userid`),
  CONSTRAINT `fk_transuser_transition` FOREIGN KEY (`transition`) REFERENCES `tblWorkflowTransitions` (`id`) ON DELETE CASCADE,
  CONSTRAINT `fk_transuser_user` FOREIGN KEY (`userid`) REFERENCES `tblUsers` (`id`) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

CREATE TABLE `tblWorkflowTransitionGroups` (
  `id`          int(11) NOT NULL AUTO_INCREMENT,
  `transition`  int(11) DEFAULT NULL,
  `groupid`     int(11) DEFAULT NULL,
  `minusers`    int(11) DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `fk_transgroup_transition` (`transition`),
  KEY `fk_transgroup_group` (`groupid`),
  CONSTRAINT `fk_transgroup_group` FOREIGN KEY (`groupid`) REFERENCES `tblGroups` (`id`) ON DELETE CASCADE,
  CONSTRAINT `fk_transgroup_transition` FOREIGN KEY (`transition`) REFERENCES `tblWorkflowTransitions` (`id`) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

-- one row: the schema version (5.1.0 or 6.0.0; patch releases keep it)
CREATE TABLE `tblVersion` (
  `date`      datetime    NOT NULL,
  `major`     smallint(6) DEFAULT NULL,
  `minor`     smallint(6) DEFAULT NULL,
  `subminor`  smallint(6) DEFAULT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8;
