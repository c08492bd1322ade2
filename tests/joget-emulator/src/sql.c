/* The SQL that differs between the engines, in one place: the schema of each engine, and the statements (or parts)
   whose text is not the same in PostgreSQL and MariaDB. Everything else is written once, portably: table names with
   the spelling of Joget's MySQL install script (PostgreSQL folds them to its lower-case names), parameters as $N with
   an optional type ($N::bigint), which db_mariadb.c turns into literals. */
#define _GNU_SOURCE
#include "emu.h"
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ================= PostgreSQL ================= */

/* The tables and columns of Joget DX 8.0.12 with the names its PostgreSQL install script gives them (lower case),
   plus the emulator-private emu_* tables. */
static const char *PG_SCHEMA =
    "CREATE SEQUENCE IF NOT EXISTS emu_oid_seq START 1000200;"
    "CREATE SEQUENCE IF NOT EXISTS emu_counter_seq START 1;"
    "CREATE TABLE IF NOT EXISTS shkprocessstates (keyvalue varchar(60) NOT NULL UNIQUE, name varchar(100) NOT NULL UNIQUE,"
    " oid numeric(19,0) NOT NULL PRIMARY KEY, version integer NOT NULL);"
    "CREATE TABLE IF NOT EXISTS shkactivitystates (keyvalue varchar(60) NOT NULL UNIQUE, name varchar(100) NOT NULL UNIQUE,"
    " oid numeric(19,0) NOT NULL PRIMARY KEY, version integer NOT NULL);"
    "CREATE TABLE IF NOT EXISTS shkprocessdefinitions (name varchar(400) NOT NULL UNIQUE, packageid varchar(180) NOT NULL,"
    " processdefinitionid varchar(180) NOT NULL, processdefinitioncreated bigint NOT NULL,"
    " processdefinitionversion varchar(40) NOT NULL, state integer NOT NULL, oid numeric(19,0) NOT NULL PRIMARY KEY,"
    " version integer NOT NULL);"
    "CREATE TABLE IF NOT EXISTS shkresourcestable (username varchar(200) NOT NULL UNIQUE, name varchar(200),"
    " oid numeric(19,0) NOT NULL PRIMARY KEY, version integer NOT NULL);"
    "CREATE TABLE IF NOT EXISTS shkprocesses (syncversion bigint NOT NULL, id varchar(200) NOT NULL UNIQUE,"
    " processdefinition numeric(19,0) NOT NULL, pdefname varchar(400) NOT NULL, activityrequesterid varchar(200),"
    " activityrequesterprocessid varchar(200), resourcerequesterid varchar(200) NOT NULL,"
    " externalrequesterclassname varchar(508), state numeric(19,0) NOT NULL, priority integer, name varchar(508),"
    " created bigint NOT NULL, createdtzo bigint NOT NULL, started bigint, startedtzo bigint,"
    " laststatetime bigint NOT NULL, laststatetimetzo bigint NOT NULL, limittime bigint NOT NULL,"
    " limittimetzo bigint NOT NULL, description varchar(508), oid numeric(19,0) NOT NULL PRIMARY KEY,"
    " version integer NOT NULL);"
    "CREATE TABLE IF NOT EXISTS shkactivities (id varchar(200) NOT NULL UNIQUE, activitysetdefinitionid varchar(180),"
    " activitydefinitionid varchar(180) NOT NULL, process numeric(19,0) NOT NULL, theresource numeric(19,0),"
    " pdefname varchar(400) NOT NULL, processid varchar(400) NOT NULL, resourceid varchar(200),"
    " state numeric(19,0) NOT NULL, blockactivityid varchar(200), performer varchar(200),"
    " isperformerasynchronous boolean, priority integer, name varchar(508), activated bigint NOT NULL,"
    " activatedtzo bigint NOT NULL, accepted bigint, acceptedtzo bigint, laststatetime bigint NOT NULL,"
    " laststatetimetzo bigint NOT NULL, limittime bigint NOT NULL, limittimetzo bigint NOT NULL,"
    " description varchar(508), oid numeric(19,0) NOT NULL PRIMARY KEY, version integer NOT NULL);"
    "CREATE INDEX IF NOT EXISTS shkactivities_process ON shkactivities(process);"
    "CREATE INDEX IF NOT EXISTS shkactivities_processid ON shkactivities(processid);"
    "CREATE INDEX IF NOT EXISTS shkprocesses_started ON shkprocesses(started, oid);"
    "CREATE INDEX IF NOT EXISTS shkprocesses_requester ON shkprocesses(activityrequesterprocessid);"
    "CREATE TABLE IF NOT EXISTS shkassignmentstable (activity numeric(19,0) NOT NULL, theresource numeric(19,0) NOT NULL,"
    " activityid varchar(200) NOT NULL, activityprocessid varchar(200) NOT NULL,"
    " activityprocessdefname varchar(400) NOT NULL, resourceid varchar(200) NOT NULL, isaccepted boolean NOT NULL,"
    " isvalid boolean NOT NULL, cnt numeric(19,0) NOT NULL UNIQUE, oid numeric(19,0) NOT NULL PRIMARY KEY,"
    " version integer NOT NULL, UNIQUE (activity, theresource));"
    "CREATE INDEX IF NOT EXISTS shkassignments_res ON shkassignmentstable(resourceid);"
    "CREATE INDEX IF NOT EXISTS shkassignments_actid ON shkassignmentstable(activityid);"
    "CREATE TABLE IF NOT EXISTS shkprocessdata (process numeric(19,0) NOT NULL, variabledefinitionid varchar(200) NOT NULL,"
    " variabletype integer NOT NULL, variablevalue bytea, variablevaluexml text, variablevaluevchar varchar(8000),"
    " variablevaluedbl double precision, variablevaluelong bigint, variablevaluedate timestamp with time zone,"
    " variablevaluebool boolean, ordno integer NOT NULL, cnt numeric(19,0) NOT NULL UNIQUE,"
    " oid numeric(19,0) NOT NULL PRIMARY KEY, version integer NOT NULL, UNIQUE (process, variabledefinitionid, ordno));"
    "CREATE TABLE IF NOT EXISTS wf_process_link (processid varchar(510) NOT NULL PRIMARY KEY, parentprocessid varchar(510),"
    " originprocessid varchar(510));"
    "CREATE INDEX IF NOT EXISTS idx_origin ON wf_process_link(originprocessid);"
    "CREATE TABLE IF NOT EXISTS wf_process_link_history (processid varchar(255) NOT NULL PRIMARY KEY,"
    " parentprocessid varchar(255), originprocessid varchar(255));"
    "CREATE TABLE IF NOT EXISTS wf_history_process (processid varchar(255) NOT NULL PRIMARY KEY, processname varchar(255),"
    " processrequesterid varchar(255), resourcerequesterid varchar(255), version varchar(255), processdefid varchar(255),"
    " started bigint, created bigint, laststatetime bigint, limitduration varchar(255),"
    " due timestamp without time zone, state varchar(255), variables varchar(255));"
    "CREATE TABLE IF NOT EXISTS wf_history_activity (activityid varchar(255) NOT NULL PRIMARY KEY,"
    " activityname varchar(255), activitydefid varchar(255), activated bigint, accepted bigint, laststatetime bigint,"
    " limitduration varchar(255), participantid varchar(255), assignmentusers varchar(255), performer varchar(255),"
    " state varchar(255), type varchar(255), due timestamp without time zone, variables varchar(255),"
    " processid varchar(255));"
    "CREATE TABLE IF NOT EXISTS app_fd (id varchar(510) NOT NULL PRIMARY KEY, datecreated timestamp with time zone,"
    " datemodified timestamp with time zone);"
    "CREATE TABLE IF NOT EXISTS app_app (appid varchar(510) NOT NULL, appversion bigint NOT NULL, name varchar(510),"
    " published boolean, datecreated timestamp with time zone, datemodified timestamp with time zone, license text,"
    " description text, meta text, PRIMARY KEY (appid, appversion));"
    "CREATE TABLE IF NOT EXISTS app_package (packageid varchar(510) NOT NULL, packageversion bigint NOT NULL,"
    " name varchar(510), datecreated timestamp with time zone, datemodified timestamp with time zone,"
    " appid varchar(510), appversion bigint, PRIMARY KEY (packageid, packageversion));"
    "CREATE TABLE IF NOT EXISTS app_form (appid varchar(510) NOT NULL, appversion bigint NOT NULL,"
    " formid varchar(510) NOT NULL, name varchar(510), datecreated timestamp with time zone,"
    " datemodified timestamp with time zone, tablename varchar(510), json text, description text,"
    " PRIMARY KEY (appid, appversion, formid));"
    "CREATE TABLE IF NOT EXISTS app_package_activity_plugin (processdefid varchar(510) NOT NULL,"
    " activitydefid varchar(510) NOT NULL, packageid varchar(510) NOT NULL, packageversion bigint NOT NULL,"
    " ouid varchar(510), pluginname varchar(510), pluginproperties text,"
    " PRIMARY KEY (processdefid, activitydefid, packageid, packageversion));"
    "CREATE TABLE IF NOT EXISTS app_package_activity_form (processdefid varchar(510) NOT NULL,"
    " activitydefid varchar(510) NOT NULL, packageid varchar(510) NOT NULL, packageversion bigint NOT NULL,"
    " ouid varchar(510), type varchar(510), formid varchar(510), formurl varchar(510),"
    " formiframestyle varchar(510), autocontinue boolean, disablesaveasdraft boolean,"
    " PRIMARY KEY (processdefid, activitydefid, packageid, packageversion));"
    "CREATE TABLE IF NOT EXISTS app_package_participant (processdefid varchar(510) NOT NULL,"
    " participantid varchar(510) NOT NULL, packageid varchar(510) NOT NULL, packageversion bigint NOT NULL,"
    " ouid varchar(510), type varchar(510), value text, pluginproperties text,"
    " PRIMARY KEY (processdefid, participantid, packageid, packageversion));"
    "CREATE TABLE IF NOT EXISTS wf_setup (id varchar(510) NOT NULL PRIMARY KEY, property varchar(510), value text,"
    " ordering integer);"
    "CREATE TABLE IF NOT EXISTS dir_user (id varchar(510) NOT NULL PRIMARY KEY, username varchar(510),"
    " password varchar(510), firstname varchar(510), lastname varchar(510), email varchar(510), active integer,"
    " timezone varchar(510), locale varchar(510));"
    "CREATE INDEX IF NOT EXISTS dir_user_username ON dir_user(username);"
    "CREATE TABLE IF NOT EXISTS dir_role (id varchar(510) NOT NULL PRIMARY KEY, name varchar(510),"
    " description varchar(510));"
    "CREATE TABLE IF NOT EXISTS dir_user_role (roleid varchar(510) NOT NULL, userid varchar(510) NOT NULL,"
    " PRIMARY KEY (userid, roleid));"
    "CREATE TABLE IF NOT EXISTS dir_group (id varchar(510) NOT NULL PRIMARY KEY, name varchar(510),"
    " description varchar(510), organizationid varchar(510));"
    "CREATE TABLE IF NOT EXISTS dir_user_group (groupid varchar(510) NOT NULL, userid varchar(510) NOT NULL,"
    " PRIMARY KEY (userid, groupid));"
    "CREATE INDEX IF NOT EXISTS wf_history_activity_pid ON wf_history_activity(processid);"
    /* Shark's AND-join bookkeeping: one row per transition followed into a join that still waits */
    "CREATE TABLE IF NOT EXISTS shkandjointable (process numeric(19,0) NOT NULL, blockactivity numeric(19,0) DEFAULT NULL,"
    " activitydefinitionid varchar(180) NOT NULL, activity numeric(19,0) NOT NULL, cnt numeric(19,0) NOT NULL,"
    " oid numeric(19,0) NOT NULL, version integer NOT NULL, PRIMARY KEY (oid), UNIQUE (cnt));"
    "CREATE INDEX IF NOT EXISTS shkandjointable_process ON shkandjointable(process, activitydefinitionid);"
    /* Shark's deadlines: one row per deadline of an open activity */
    "CREATE TABLE IF NOT EXISTS shkdeadlines (process numeric(19,0) NOT NULL, activity numeric(19,0) NOT NULL,"
    " cnt numeric(19,0) NOT NULL, timelimit bigint NOT NULL, timelimittzo bigint NOT NULL,"
    " exceptionname varchar(200) NOT NULL, issynchronous boolean NOT NULL, isexecuted boolean NOT NULL,"
    " oid numeric(19,0) NOT NULL, version integer NOT NULL, PRIMARY KEY (oid), UNIQUE (cnt));"
    "CREATE INDEX IF NOT EXISTS shkdeadlines_activity ON shkdeadlines(activity);"
    "CREATE INDEX IF NOT EXISTS shkdeadlines_process ON shkdeadlines(process);"
    /* an app's default plugins (audit trail, notification) */
    "CREATE TABLE IF NOT EXISTS app_plugin_default (appid varchar(255) NOT NULL, appversion bigint NOT NULL,"
    " id varchar(255) NOT NULL, pluginname varchar(255), plugindescription text, pluginproperties text,"
    " PRIMARY KEY (appid, appversion, id));"
    /* emulator-private */
    "CREATE TABLE IF NOT EXISTS emu_process_graph (pdefname varchar(400) NOT NULL PRIMARY KEY,"
    " appid varchar(510) NOT NULL, packageversion bigint NOT NULL, processdefid varchar(180) NOT NULL, graph text NOT NULL);"
    "CREATE TABLE IF NOT EXISTS emu_meta (key varchar(100) PRIMARY KEY, value text);"
    "INSERT INTO shkprocessstates VALUES"
    " ('open.running','open.running',1000000,0),('open.not_running.not_started','open.not_running.not_started',1000002,0),"
    " ('open.not_running.suspended','open.not_running.suspended',1000004,0),('closed.completed','closed.completed',1000006,0),"
    " ('closed.terminated','closed.terminated',1000008,0),('closed.aborted','closed.aborted',1000010,0)"
    " ON CONFLICT DO NOTHING;"
    "INSERT INTO shkactivitystates VALUES"
    " ('open.running','open.running',1000001,0),('open.not_running.not_started','open.not_running.not_started',1000003,0),"
    " ('open.not_running.suspended','open.not_running.suspended',1000005,0),('closed.completed','closed.completed',1000007,0),"
    " ('closed.terminated','closed.terminated',1000009,0),('closed.aborted','closed.aborted',1000011,0)"
    " ON CONFLICT DO NOTHING;"
    "INSERT INTO dir_role VALUES ('ROLE_ADMIN','Admin','Administrator'),('ROLE_USER','User','Normal User')"
    " ON CONFLICT DO NOTHING;"
    "INSERT INTO wf_setup VALUES ('deleteProcessOnCompletion','deleteProcessOnCompletion','archive',NULL)"
    " ON CONFLICT DO NOTHING;";

static const char *PG_TABLES[] = {
    "shkassignmentstable", "shkprocessdata", "shkactivities", "shkprocesses", "shkprocessdefinitions",
    "shkresourcestable", "shkprocessstates", "shkactivitystates", "wf_process_link", "wf_process_link_history",
    "wf_history_process", "wf_history_activity", "app_fd", "app_app", "app_package", "app_form",
    "app_package_activity_plugin", "app_package_activity_form", "app_package_participant", "wf_setup", "dir_user",
    "dir_role", "dir_user_role", "dir_group", "dir_user_group", "shkandjointable", "shkdeadlines", "app_plugin_default",
    "emu_process_graph", "emu_meta", NULL};

/* ================= MariaDB / MySQL =================
   Joget's MySQL layout (jw-community's setup/sql/jwdb-mysql.sql, a MariaDB 10.5 dump): table and column names as it
   spells them, its column types (decimal(19,0) oids, smallint(6) Shark flags, bit(1) app flags, bigint(20) times,
   datetime dates, text/longtext), its primary, unique and secondary keys, InnoDB, utf8mb4 with utf8mb4_unicode_ci
   (the history tables' columns use the charset's default collation, utf8mb4_general_ci, as in the dump). Foreign
   keys are left out, as in the PostgreSQL layout: the engine writes in its own order. One statement per entry. */
#define MY_OPTS " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci"
#define GCI " COLLATE utf8mb4_general_ci"
static const char *MY_SCHEMA[] = {
    "CREATE SEQUENCE IF NOT EXISTS emu_oid_seq START WITH 1000200 NOCACHE",
    "CREATE SEQUENCE IF NOT EXISTS emu_counter_seq START WITH 1 NOCACHE",
    "CREATE TABLE IF NOT EXISTS SHKProcessStates (KeyValue varchar(30) NOT NULL, Name varchar(50) NOT NULL,"
    " oid decimal(19,0) NOT NULL, version int(11) NOT NULL, PRIMARY KEY (oid), UNIQUE KEY I1_SHKProcessStates (KeyValue),"
    " UNIQUE KEY I2_SHKProcessStates (Name))" MY_OPTS,
    "CREATE TABLE IF NOT EXISTS SHKActivityStates (KeyValue varchar(30) NOT NULL, Name varchar(50) NOT NULL,"
    " oid decimal(19,0) NOT NULL, version int(11) NOT NULL, PRIMARY KEY (oid), UNIQUE KEY I1_SHKActivityStates (KeyValue),"
    " UNIQUE KEY I2_SHKActivityStates (Name))" MY_OPTS,
    "CREATE TABLE IF NOT EXISTS SHKProcessDefinitions (Name varchar(200) NOT NULL, PackageId varchar(90) NOT NULL,"
    " ProcessDefinitionId varchar(90) NOT NULL, ProcessDefinitionCreated bigint(20) NOT NULL,"
    " ProcessDefinitionVersion varchar(20) NOT NULL, State int(11) NOT NULL, oid decimal(19,0) NOT NULL,"
    " version int(11) NOT NULL, PRIMARY KEY (oid), UNIQUE KEY I1_SHKProcessDefinitions (Name))" MY_OPTS,
    "CREATE TABLE IF NOT EXISTS SHKResourcesTable (Username varchar(100) NOT NULL, Name varchar(100) DEFAULT NULL,"
    " oid decimal(19,0) NOT NULL, version int(11) NOT NULL, PRIMARY KEY (oid),"
    " UNIQUE KEY I1_SHKResourcesTable (Username))" MY_OPTS,
    "CREATE TABLE IF NOT EXISTS SHKProcesses (SyncVersion bigint(20) NOT NULL, Id varchar(100) NOT NULL,"
    " ProcessDefinition decimal(19,0) NOT NULL, PDefName varchar(200) NOT NULL,"
    " ActivityRequesterId varchar(100) DEFAULT NULL, ActivityRequesterProcessId varchar(100) DEFAULT NULL,"
    " ResourceRequesterId varchar(100) NOT NULL, ExternalRequesterClassName varchar(254) DEFAULT NULL,"
    " State decimal(19,0) NOT NULL, Priority int(11) DEFAULT NULL, Name varchar(254) DEFAULT NULL,"
    " Created bigint(20) NOT NULL, CreatedTZO bigint(20) NOT NULL, Started bigint(20) DEFAULT NULL,"
    " StartedTZO bigint(20) DEFAULT NULL, LastStateTime bigint(20) NOT NULL, LastStateTimeTZO bigint(20) NOT NULL,"
    " LimitTime bigint(20) NOT NULL, LimitTimeTZO bigint(20) NOT NULL, Description varchar(254) DEFAULT NULL,"
    " oid decimal(19,0) NOT NULL, version int(11) NOT NULL, PRIMARY KEY (oid), UNIQUE KEY I1_SHKProcesses (Id),"
    " KEY I2_SHKProcesses (ProcessDefinition), KEY I3_SHKProcesses (State), KEY I4_SHKProcesses (ActivityRequesterId),"
    " KEY I5_SHKProcesses (ResourceRequesterId))" MY_OPTS,
    "CREATE TABLE IF NOT EXISTS SHKActivities (Id varchar(100) NOT NULL, ActivitySetDefinitionId varchar(90) DEFAULT NULL,"
    " ActivityDefinitionId varchar(90) NOT NULL, Process decimal(19,0) NOT NULL, TheResource decimal(19,0) DEFAULT NULL,"
    " PDefName varchar(200) NOT NULL, ProcessId varchar(200) NOT NULL, ResourceId varchar(100) DEFAULT NULL,"
    " State decimal(19,0) NOT NULL, BlockActivityId varchar(100) DEFAULT NULL, Performer varchar(100) DEFAULT NULL,"
    " IsPerformerAsynchronous smallint(6) DEFAULT NULL, Priority int(11) DEFAULT NULL, Name varchar(254) DEFAULT NULL,"
    " Activated bigint(20) NOT NULL, ActivatedTZO bigint(20) NOT NULL, Accepted bigint(20) DEFAULT NULL,"
    " AcceptedTZO bigint(20) DEFAULT NULL, LastStateTime bigint(20) NOT NULL, LastStateTimeTZO bigint(20) NOT NULL,"
    " LimitTime bigint(20) NOT NULL, LimitTimeTZO bigint(20) NOT NULL, Description varchar(254) DEFAULT NULL,"
    " oid decimal(19,0) NOT NULL, version int(11) NOT NULL, PRIMARY KEY (oid), UNIQUE KEY I1_SHKActivities (Id),"
    " KEY SHKActivities_TheResource (TheResource), KEY SHKActivities_State (State),"
    " KEY I2_SHKActivities (Process, ActivitySetDefinitionId, ActivityDefinitionId), KEY I3_SHKActivities (Process, State))"
    MY_OPTS,
    "CREATE TABLE IF NOT EXISTS SHKAssignmentsTable (Activity decimal(19,0) NOT NULL, TheResource decimal(19,0) NOT NULL,"
    " ActivityId varchar(100) NOT NULL, ActivityProcessId varchar(100) NOT NULL,"
    " ActivityProcessDefName varchar(200) NOT NULL, ResourceId varchar(100) NOT NULL, IsAccepted smallint(6) NOT NULL,"
    " IsValid smallint(6) NOT NULL, CNT decimal(19,0) NOT NULL, oid decimal(19,0) NOT NULL, version int(11) NOT NULL,"
    " PRIMARY KEY (oid), UNIQUE KEY I1_SHKAssignmentsTable (CNT), UNIQUE KEY I2_SHKAssignmentsTable (Activity, TheResource),"
    " KEY I3_SHKAssignmentsTable (TheResource, IsValid), KEY I4_SHKAssignmentsTable (ActivityId),"
    " KEY I5_SHKAssignmentsTable (ResourceId), KEY FK_rnb6mhntls567xpifcfvygkuu (ActivityProcessId))" MY_OPTS,
    "CREATE TABLE IF NOT EXISTS SHKProcessData (Process decimal(19,0) NOT NULL, VariableDefinitionId varchar(100) NOT NULL,"
    " VariableType int(11) NOT NULL, VariableValue mediumblob DEFAULT NULL, VariableValueXML text DEFAULT NULL,"
    " VariableValueVCHAR varchar(4000) DEFAULT NULL, VariableValueDBL double DEFAULT NULL,"
    " VariableValueLONG bigint(20) DEFAULT NULL, VariableValueDATE datetime DEFAULT NULL,"
    " VariableValueBOOL smallint(6) DEFAULT NULL, OrdNo int(11) NOT NULL, CNT decimal(19,0) NOT NULL,"
    " oid decimal(19,0) NOT NULL, version int(11) NOT NULL, PRIMARY KEY (oid), UNIQUE KEY I1_SHKProcessData (CNT),"
    " UNIQUE KEY I2_SHKProcessData (Process, VariableDefinitionId, OrdNo))" MY_OPTS,
    /* Shark's AND-join bookkeeping: one row per transition followed into a join that still waits */
    "CREATE TABLE IF NOT EXISTS SHKAndJoinTable (Process decimal(19,0) NOT NULL, BlockActivity decimal(19,0) DEFAULT NULL,"
    " ActivityDefinitionId varchar(90) NOT NULL, Activity decimal(19,0) NOT NULL, CNT decimal(19,0) NOT NULL,"
    " oid decimal(19,0) NOT NULL, version int(11) NOT NULL, PRIMARY KEY (oid), UNIQUE KEY I1_SHKAndJoinTable (CNT),"
    " KEY SHKAndJoinTable_BlockActivity (BlockActivity),"
    " KEY I2_SHKAndJoinTable (Process, BlockActivity, ActivityDefinitionId), KEY I3_SHKAndJoinTable (Activity))" MY_OPTS,
    /* Shark's deadlines: one row per deadline of an open activity */
    "CREATE TABLE IF NOT EXISTS SHKDeadlines (Process decimal(19,0) NOT NULL, Activity decimal(19,0) NOT NULL,"
    " CNT decimal(19,0) NOT NULL, TimeLimit bigint(20) NOT NULL, TimeLimitTZO bigint(20) NOT NULL,"
    " ExceptionName varchar(100) NOT NULL, IsSynchronous smallint(6) NOT NULL, IsExecuted smallint(6) NOT NULL,"
    " oid decimal(19,0) NOT NULL, version int(11) NOT NULL, PRIMARY KEY (oid), UNIQUE KEY I1_SHKDeadlines (CNT),"
    " KEY I2_SHKDeadlines (Process, TimeLimit), KEY I3_SHKDeadlines (Activity, TimeLimit))" MY_OPTS,
    "CREATE TABLE IF NOT EXISTS wf_process_link (processId varchar(255) NOT NULL, parentProcessId varchar(255) DEFAULT NULL,"
    " originProcessId varchar(255) DEFAULT NULL, PRIMARY KEY (processId))" MY_OPTS,
    "CREATE TABLE IF NOT EXISTS wf_process_link_history (processId varchar(255)" GCI " NOT NULL,"
    " parentProcessId varchar(255)" GCI " DEFAULT NULL, originProcessId varchar(255)" GCI " DEFAULT NULL,"
    " PRIMARY KEY (processId))" MY_OPTS,
    "CREATE TABLE IF NOT EXISTS wf_history_process (processId varchar(255)" GCI " NOT NULL,"
    " processName varchar(255)" GCI " DEFAULT NULL, processRequesterId varchar(255)" GCI " DEFAULT NULL,"
    " resourceRequesterId varchar(255)" GCI " DEFAULT NULL, version varchar(255)" GCI " DEFAULT NULL,"
    " processDefId varchar(255)" GCI " DEFAULT NULL, started bigint(20) DEFAULT NULL, created bigint(20) DEFAULT NULL,"
    " lastStateTime bigint(20) DEFAULT NULL, limitDuration varchar(255)" GCI " DEFAULT NULL, due datetime DEFAULT NULL,"
    " state varchar(255)" GCI " DEFAULT NULL, variables text DEFAULT NULL, PRIMARY KEY (processId))" MY_OPTS,
    "CREATE TABLE IF NOT EXISTS wf_history_activity (activityId varchar(255)" GCI " NOT NULL,"
    " activityName varchar(255)" GCI " DEFAULT NULL, activityDefId varchar(255)" GCI " DEFAULT NULL,"
    " activated bigint(20) DEFAULT NULL, accepted bigint(20) DEFAULT NULL, lastStateTime bigint(20) DEFAULT NULL,"
    " limitDuration varchar(255)" GCI " DEFAULT NULL, participantId varchar(255)" GCI " DEFAULT NULL,"
    " assignmentUsers varchar(255)" GCI " DEFAULT NULL, performer varchar(255)" GCI " DEFAULT NULL,"
    " state varchar(255)" GCI " DEFAULT NULL, type varchar(255)" GCI " DEFAULT NULL, due datetime DEFAULT NULL,"
    " variables text DEFAULT NULL, processId varchar(255)" GCI " DEFAULT NULL, PRIMARY KEY (activityId),"
    " KEY FK_7mmrnb28ugrdxpf0dpw35y73u (processId))" MY_OPTS,
    "CREATE TABLE IF NOT EXISTS app_fd (id varchar(255) NOT NULL, dateCreated datetime DEFAULT NULL,"
    " dateModified datetime DEFAULT NULL, PRIMARY KEY (id))" MY_OPTS,
    "CREATE TABLE IF NOT EXISTS app_app (appId varchar(255) NOT NULL, appVersion bigint(20) NOT NULL,"
    " name varchar(255) DEFAULT NULL, published bit(1) DEFAULT NULL, dateCreated datetime DEFAULT NULL,"
    " dateModified datetime DEFAULT NULL, license text DEFAULT NULL, description longtext DEFAULT NULL,"
    " meta longtext DEFAULT NULL, PRIMARY KEY (appId, appVersion), KEY idx_name (name))" MY_OPTS,
    "CREATE TABLE IF NOT EXISTS app_package (packageId varchar(255) NOT NULL, packageVersion bigint(20) NOT NULL,"
    " name varchar(255) DEFAULT NULL, dateCreated datetime DEFAULT NULL, dateModified datetime DEFAULT NULL,"
    " appId varchar(255) DEFAULT NULL, appVersion bigint(20) DEFAULT NULL, PRIMARY KEY (packageId, packageVersion),"
    " KEY FK852EA428462EF4C7 (appId, appVersion))" MY_OPTS,
    "CREATE TABLE IF NOT EXISTS app_form (appId varchar(255) NOT NULL, appVersion bigint(20) NOT NULL,"
    " formId varchar(255) NOT NULL, name varchar(255) DEFAULT NULL, dateCreated datetime DEFAULT NULL,"
    " dateModified datetime DEFAULT NULL, tableName varchar(255) DEFAULT NULL, json longtext DEFAULT NULL,"
    " description longtext DEFAULT NULL, PRIMARY KEY (appId, appVersion, formId),"
    " KEY FK45957822462EF4C7 (appId, appVersion), KEY idx_name (name))" MY_OPTS,
    "CREATE TABLE IF NOT EXISTS app_package_activity_plugin (processDefId varchar(255) NOT NULL,"
    " activityDefId varchar(255) NOT NULL, packageId varchar(255) NOT NULL, packageVersion bigint(20) NOT NULL,"
    " ouid varchar(255) DEFAULT NULL, pluginName varchar(255) DEFAULT NULL, pluginProperties text DEFAULT NULL,"
    " PRIMARY KEY (processDefId, activityDefId, packageId, packageVersion),"
    " KEY FKADE8644C5F255BCC (packageId, packageVersion))" MY_OPTS,
    "CREATE TABLE IF NOT EXISTS app_package_activity_form (processDefId varchar(255) NOT NULL,"
    " activityDefId varchar(255) NOT NULL, packageId varchar(255) NOT NULL, packageVersion bigint(20) NOT NULL,"
    " ouid varchar(255) DEFAULT NULL, type varchar(255) DEFAULT NULL, formId varchar(255) DEFAULT NULL,"
    " formUrl varchar(255) DEFAULT NULL, formIFrameStyle varchar(255) DEFAULT NULL, autoContinue bit(1) DEFAULT NULL,"
    " disableSaveAsDraft bit(1) DEFAULT NULL, PRIMARY KEY (processDefId, activityDefId, packageId, packageVersion),"
    " KEY FKA8D741D5F255BCC (packageId, packageVersion))" MY_OPTS,
    "CREATE TABLE IF NOT EXISTS app_package_participant (processDefId varchar(255) NOT NULL,"
    " participantId varchar(255) NOT NULL, packageId varchar(255) NOT NULL, packageVersion bigint(20) NOT NULL,"
    " ouid varchar(255) DEFAULT NULL, type varchar(255) DEFAULT NULL, value text DEFAULT NULL,"
    " pluginProperties text DEFAULT NULL, PRIMARY KEY (processDefId, participantId, packageId, packageVersion),"
    " KEY FK6D7BF59C5F255BCC (packageId, packageVersion))" MY_OPTS,
    /* an app's default plugins (audit trail, notification) */
    "CREATE TABLE IF NOT EXISTS app_plugin_default (appId varchar(255) NOT NULL, appVersion bigint(20) NOT NULL,"
    " id varchar(255) NOT NULL, pluginName varchar(255) DEFAULT NULL, pluginDescription text DEFAULT NULL,"
    " pluginProperties text DEFAULT NULL, PRIMARY KEY (appId, appVersion, id),"
    " KEY FK7A835713462EF4C7 (appId, appVersion))" MY_OPTS,
    "CREATE TABLE IF NOT EXISTS wf_setup (id varchar(255) NOT NULL, property varchar(255) DEFAULT NULL,"
    " value text DEFAULT NULL, ordering int(11) DEFAULT NULL, PRIMARY KEY (id))" MY_OPTS,
    "CREATE TABLE IF NOT EXISTS dir_user (id varchar(255) NOT NULL, username varchar(255) DEFAULT NULL,"
    " password varchar(255) DEFAULT NULL, firstName varchar(255) DEFAULT NULL, lastName varchar(255) DEFAULT NULL,"
    " email varchar(255) DEFAULT NULL, active int(11) DEFAULT NULL, timeZone varchar(255) DEFAULT NULL,"
    " locale varchar(255) DEFAULT NULL, PRIMARY KEY (id))" MY_OPTS,
    "CREATE TABLE IF NOT EXISTS dir_role (id varchar(255) NOT NULL, name varchar(255) DEFAULT NULL,"
    " description varchar(255) DEFAULT NULL, PRIMARY KEY (id))" MY_OPTS,
    "CREATE TABLE IF NOT EXISTS dir_user_role (roleId varchar(255) NOT NULL, userId varchar(255) NOT NULL,"
    " PRIMARY KEY (userId, roleId), KEY FK5C5FE738C8FE3CA7 (roleId), KEY FK5C5FE738CE539211 (userId))" MY_OPTS,
    "CREATE TABLE IF NOT EXISTS dir_group (id varchar(255) NOT NULL, name varchar(255) DEFAULT NULL,"
    " description varchar(255) DEFAULT NULL, organizationId varchar(255) DEFAULT NULL, PRIMARY KEY (id),"
    " KEY FKBC9A804D18CEBAE1 (organizationId))" MY_OPTS,
    "CREATE TABLE IF NOT EXISTS dir_user_group (groupId varchar(255) NOT NULL, userId varchar(255) NOT NULL,"
    " PRIMARY KEY (userId, groupId), KEY FK2F0367FD159B6639 (groupId), KEY FK2F0367FDCE539211 (userId))" MY_OPTS,
    /* emulator-private */
    "CREATE TABLE IF NOT EXISTS emu_process_graph (pdefname varchar(400) NOT NULL PRIMARY KEY,"
    " appid varchar(510) NOT NULL, packageversion bigint NOT NULL, processdefid varchar(180) NOT NULL,"
    " graph longtext NOT NULL)" MY_OPTS,
    "CREATE TABLE IF NOT EXISTS emu_meta (`key` varchar(100) NOT NULL PRIMARY KEY, value longtext)" MY_OPTS,
    /* the install script's rows */
    "INSERT IGNORE INTO SHKProcessStates VALUES"
    " ('open.running','open.running',1000000,0),('open.not_running.not_started','open.not_running.not_started',1000002,0),"
    " ('open.not_running.suspended','open.not_running.suspended',1000004,0),('closed.completed','closed.completed',1000006,0),"
    " ('closed.terminated','closed.terminated',1000008,0),('closed.aborted','closed.aborted',1000010,0)",
    "INSERT IGNORE INTO SHKActivityStates VALUES"
    " ('open.running','open.running',1000001,0),('open.not_running.not_started','open.not_running.not_started',1000003,0),"
    " ('open.not_running.suspended','open.not_running.suspended',1000005,0),('closed.completed','closed.completed',1000007,0),"
    " ('closed.terminated','closed.terminated',1000009,0),('closed.aborted','closed.aborted',1000011,0)",
    "INSERT IGNORE INTO dir_role VALUES ('ROLE_ADMIN','Admin','Administrator'),('ROLE_USER','User','Normal User')",
    "INSERT IGNORE INTO wf_setup VALUES ('deleteProcessOnCompletion','deleteProcessOnCompletion','archive',NULL)",
    NULL};

static const char *MY_TABLES[] = {
    "SHKAssignmentsTable", "SHKProcessData", "SHKActivities", "SHKProcesses", "SHKProcessDefinitions",
    "SHKResourcesTable", "SHKProcessStates", "SHKActivityStates", "wf_process_link", "wf_process_link_history",
    "wf_history_process", "wf_history_activity", "app_fd", "app_app", "app_package", "app_form",
    "app_package_activity_plugin", "app_package_activity_form", "app_package_participant", "wf_setup", "dir_user",
    "dir_role", "dir_user_role", "dir_group", "dir_user_group", "SHKAndJoinTable", "SHKDeadlines", "app_plugin_default",
    "emu_process_graph", "emu_meta", NULL};

/* ================= statements that differ =================
   PostgreSQL's text is the one the emulator always used; MariaDB's does the same with its syntax: INSERT IGNORE and
   ON DUPLICATE KEY UPDATE for ON CONFLICT, nextval(seq) for nextval('seq'), SUBSTRING_INDEX for split_part,
   GROUP_CONCAT for string_agg, JSON_VALUE for ->>, FROM_UNIXTIME for to_timestamp, and an explicit collation where
   the history tables (utf8mb4_general_ci) meet the others (utf8mb4_unicode_ci) in a UNION. */
#define HC " COLLATE utf8mb4_unicode_ci"
static const struct { const char *pg, *my; } QS[Q_COUNT] = {
    [Q_LOCK_INSTANCE] = {
        "SELECT p.oid, p.pdefname, p.resourcerequesterid, p.state, COALESCE(l.originprocessid, p.id),"
        " p.activityrequesterid, p.activityrequesterprocessid"
        " FROM shkprocesses p LEFT JOIN wf_process_link l ON l.processid = p.id WHERE p.id = $1"
        " FOR UPDATE OF p",
        "SELECT p.oid, p.pdefname, p.resourcerequesterid, p.state, COALESCE(l.originprocessid, p.id),"
        " p.activityrequesterid, p.activityrequesterprocessid"
        " FROM SHKProcesses p LEFT JOIN wf_process_link l ON l.processid = p.id WHERE p.id = $1"
        " FOR UPDATE"},
    [Q_VAR_INSERT] = {
        "INSERT INTO shkprocessdata (process, variabledefinitionid, variabletype, variablevaluevchar,"
        " variablevaluedbl, variablevaluelong, variablevaluebool, ordno, cnt, oid, version)"
        " VALUES ($1::numeric,$2,$3::int,$4,$5::float8,$6::bigint,$7::boolean,0,"
        " nextval('emu_oid_seq'),nextval('emu_oid_seq'),0)",
        "INSERT INTO SHKProcessData (process, variabledefinitionid, variabletype, variablevaluevchar,"
        " variablevaluedbl, variablevaluelong, variablevaluebool, ordno, cnt, oid, version)"
        " VALUES ($1::numeric,$2,$3::int,$4,$5::float8,$6::bigint,$7::boolean,0,"
        " nextval(emu_oid_seq),nextval(emu_oid_seq),0)"},
    [Q_RESOURCE_OID] = {
        "INSERT INTO shkresourcestable (username, name, oid, version) VALUES ($1, $1, nextval('emu_oid_seq'), 0)"
        " ON CONFLICT (username) DO UPDATE SET version = shkresourcestable.version RETURNING oid",
        "INSERT INTO SHKResourcesTable (username, name, oid, version) VALUES ($1, $1, nextval(emu_oid_seq), 0)"
        " ON DUPLICATE KEY UPDATE version = version RETURNING oid"},
    [Q_DEADLINE_INSERT] = {
        "INSERT INTO shkdeadlines (process, activity, cnt, timelimit, timelimittzo, exceptionname, issynchronous,"
        " isexecuted, oid, version) VALUES ($1::numeric,$2::numeric,nextval('emu_oid_seq'),$3::bigint,0,"
        " 'deadline',false,false,nextval('emu_oid_seq'),0)",
        "INSERT INTO SHKDeadlines (process, activity, cnt, timelimit, timelimittzo, exceptionname, issynchronous,"
        " isexecuted, oid, version) VALUES ($1::numeric,$2::numeric,nextval(emu_oid_seq),$3::bigint,0,"
        " 'deadline',0,0,nextval(emu_oid_seq),0)"},
    [Q_ASSIGN] = {
        "INSERT INTO shkassignmentstable (activity, theresource, activityid, activityprocessid,"
        " activityprocessdefname, resourceid, isaccepted, isvalid, cnt, oid, version)"
        " VALUES ($1::numeric,$2::numeric,$3,$4,$5,$6,false,true,nextval('emu_oid_seq'),"
        " nextval('emu_oid_seq'),0) ON CONFLICT DO NOTHING",
        "INSERT IGNORE INTO SHKAssignmentsTable (activity, theresource, activityid, activityprocessid,"
        " activityprocessdefname, resourceid, isaccepted, isvalid, cnt, oid, version)"
        " VALUES ($1::numeric,$2::numeric,$3,$4,$5,$6,0,1,nextval(emu_oid_seq),nextval(emu_oid_seq),0)"},
    [Q_ANDJOIN_INSERT] = {
        "INSERT INTO shkandjointable (process, blockactivity, activitydefinitionid, activity, cnt, oid, version)"
        " VALUES ($1::numeric,NULL,$2,$3::numeric,nextval('emu_oid_seq'),nextval('emu_oid_seq'),0)",
        "INSERT INTO SHKAndJoinTable (process, blockactivity, activitydefinitionid, activity, cnt, oid, version)"
        " VALUES ($1::numeric,NULL,$2,$3::numeric,nextval(emu_oid_seq),nextval(emu_oid_seq),0)"},
    [Q_ARCHIVE_PROCESS] = {
        "INSERT INTO wf_history_process (processid, processname, processrequesterid, resourcerequesterid,"
        " version, processdefid, started, created, laststatetime, state)"
        " SELECT p.id, p.name, p.activityrequesterprocessid, p.resourcerequesterid, split_part(p.pdefname,'#',2),"
        " p.pdefname, p.started, p.created, p.laststatetime, s.name FROM shkprocesses p"
        " JOIN shkprocessstates s ON s.oid=p.state WHERE p.oid=$1::numeric ON CONFLICT DO NOTHING",
        "INSERT IGNORE INTO wf_history_process (processid, processname, processrequesterid, resourcerequesterid,"
        " version, processdefid, started, created, laststatetime, state)"
        " SELECT p.id, p.name, p.activityrequesterprocessid, p.resourcerequesterid,"
        " SUBSTRING_INDEX(SUBSTRING_INDEX(p.pdefname,'#',2),'#',-1),"
        " p.pdefname, p.started, p.created, p.laststatetime, s.name FROM SHKProcesses p"
        " JOIN SHKProcessStates s ON s.oid=p.state WHERE p.oid=$1::numeric"},
    [Q_ARCHIVE_ACTIVITIES] = {
        "INSERT INTO wf_history_activity (activityid, activityname, activitydefid, activated, accepted,"
        " laststatetime, participantid, performer, state, type, due, processid)"
        " SELECT a.id, a.name, a.activitydefinitionid, a.activated, a.accepted, a.laststatetime, a.performer,"
        " a.resourceid, s.name, 'normal', CASE WHEN a.limittime > 0 THEN"
        " to_timestamp(a.limittime / 1000.0) AT TIME ZONE 'UTC' END, a.processid"
        " FROM shkactivities a JOIN shkactivitystates s ON s.oid=a.state"
        " WHERE a.process=$1::numeric ON CONFLICT DO NOTHING",
        "INSERT IGNORE INTO wf_history_activity (activityid, activityname, activitydefid, activated, accepted,"
        " laststatetime, participantid, performer, state, type, due, processid)"
        " SELECT a.id, a.name, a.activitydefinitionid, a.activated, a.accepted, a.laststatetime, a.performer,"
        " a.resourceid, s.name, 'normal', CASE WHEN a.limittime > 0 THEN FROM_UNIXTIME(a.limittime DIV 1000) END,"
        " a.processid FROM SHKActivities a JOIN SHKActivityStates s ON s.oid=a.state WHERE a.process=$1::numeric"},
    [Q_ARCHIVE_LINK] = {
        "INSERT INTO wf_process_link_history SELECT processid, parentprocessid, originprocessid"
        " FROM wf_process_link WHERE processid=$1 ON CONFLICT DO NOTHING",
        "INSERT IGNORE INTO wf_process_link_history SELECT processid, parentprocessid, originprocessid"
        " FROM wf_process_link WHERE processid=$1"},
    [Q_USER_ROLES] = {
        "SELECT u.password, COALESCE(u.active,1), COALESCE((SELECT string_agg(roleid, ',') FROM dir_user_role"
        " WHERE userid=u.id),''), (SELECT count(*) FROM dir_role WHERE id='ROLE_SYSADMIN')"
        " FROM dir_user u WHERE u.username=$1 LIMIT 1",
        "SELECT u.password, COALESCE(u.active,1), COALESCE((SELECT GROUP_CONCAT(roleid SEPARATOR ',') FROM dir_user_role"
        " WHERE userid=u.id),''), (SELECT count(*) FROM dir_role WHERE id='ROLE_SYSADMIN')"
        " FROM dir_user u WHERE u.username=$1 LIMIT 1"},
    [Q_PROCESS_VIEW] = {
        "SELECT p.pdefname, p.name, p.state::int, p.resourcerequesterid, p.started, NULL::bigint,"
        " COALESCE(a.name, split_part(p.pdefname,'#',1))"
        " FROM shkprocesses p LEFT JOIN app_package a ON a.packageid=split_part(p.pdefname,'#',1)"
        " AND a.packageversion::text=split_part(p.pdefname,'#',2) WHERE p.id=$1"
        " UNION ALL SELECT h.processdefid, h.processname, CASE h.state WHEN 'closed.completed' THEN 1000006"
        " WHEN 'closed.aborted' THEN 1000010 ELSE 1000008 END, h.resourcerequesterid, h.started, h.laststatetime,"
        " split_part(h.processdefid,'#',1) FROM wf_history_process h WHERE h.processid=$1 LIMIT 1",
        "SELECT p.pdefname, p.name, p.state, p.resourcerequesterid, p.started, NULL,"
        " COALESCE(a.name, SUBSTRING_INDEX(p.pdefname,'#',1))"
        " FROM SHKProcesses p LEFT JOIN app_package a ON a.packageid=SUBSTRING_INDEX(p.pdefname,'#',1)"
        " AND CAST(a.packageversion AS CHAR)=SUBSTRING_INDEX(SUBSTRING_INDEX(p.pdefname,'#',2),'#',-1) WHERE p.id=$1"
        " UNION ALL SELECT h.processdefid" HC ", h.processname" HC ", CASE h.state WHEN 'closed.completed' THEN 1000006"
        " WHEN 'closed.aborted' THEN 1000010 ELSE 1000008 END, h.resourcerequesterid" HC ", h.started, h.laststatetime,"
        " SUBSTRING_INDEX(h.processdefid,'#',1)" HC " FROM wf_history_process h WHERE h.processid=$1 LIMIT 1"},
    [Q_ACTLIST_ONE] = {
        "SELECT a.id, a.name, s.name AS state, a.activated, a.oid FROM shkactivities a JOIN shkactivitystates s"
        " ON s.oid=a.state WHERE a.processid=$1 UNION ALL SELECT h.activityid, h.activityname, h.state,"
        " h.activated, 0 FROM wf_history_activity h WHERE h.processid=$1",
        "SELECT a.id, a.name, s.name AS state, a.activated, a.oid FROM SHKActivities a JOIN SHKActivityStates s"
        " ON s.oid=a.state WHERE a.processid=$1 UNION ALL SELECT h.activityid" HC ", h.activityname" HC ", h.state" HC ","
        " h.activated, 0 FROM wf_history_activity h WHERE h.processid=$1"},
    [Q_ACTLIST_ALL] = {
        "SELECT a.id, a.name, s.name AS state, a.activated, a.oid FROM shkactivities a JOIN shkactivitystates s"
        " ON s.oid=a.state UNION ALL SELECT h.activityid, h.activityname, h.state, h.activated, 0"
        " FROM wf_history_activity h",
        "SELECT a.id, a.name, s.name AS state, a.activated, a.oid FROM SHKActivities a JOIN SHKActivityStates s"
        " ON s.oid=a.state UNION ALL SELECT h.activityid" HC ", h.activityname" HC ", h.state" HC ", h.activated, 0"
        " FROM wf_history_activity h"},
    [Q_PROCDEF_NAME] = {"g.graph::json->>'name'", "CONVERT(JSON_VALUE(g.graph, '$.name') USING utf8mb4)"},
    [Q_FD_COLUMNS] = {
        /* pg_attribute, not the information_schema view: this runs at every form write */
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(quote_ident(current_schema()) || '.' ||"
        " quote_ident($1)) AND attnum > 0 AND NOT attisdropped",
        "SELECT column_name FROM information_schema.columns WHERE table_schema=DATABASE() AND table_name=$1"},
    [Q_FD_TABLES] = {
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE 'app\\_fd\\_%'",
        "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name LIKE 'app\\_fd\\_%'"},
    [Q_APP_UPSERT] = {
        "INSERT INTO app_app (appid, appversion, name, published, datecreated, datemodified)"
        " VALUES ($1,$2::bigint,$3,$4::boolean,now(),now()) ON CONFLICT (appid, appversion) DO UPDATE"
        " SET name=EXCLUDED.name, published=EXCLUDED.published",
        "INSERT INTO app_app (appid, appversion, name, published, datecreated, datemodified)"
        " VALUES ($1,$2::bigint,$3,$4::boolean,now(),now()) ON DUPLICATE KEY UPDATE"
        " name=VALUES(name), published=VALUES(published)"},
    [Q_PACKAGE_UPSERT] = {
        "INSERT INTO app_package (packageid, packageversion, name, datecreated, datemodified, appid, appversion)"
        " VALUES ($1,$2::bigint,$3,now(),now(),$1,$4::bigint) ON CONFLICT (packageid, packageversion) DO UPDATE"
        " SET appversion=EXCLUDED.appversion",
        "INSERT INTO app_package (packageid, packageversion, name, datecreated, datemodified, appid, appversion)"
        " VALUES ($1,$2::bigint,$3,now(),now(),$1,$4::bigint) ON DUPLICATE KEY UPDATE appversion=VALUES(appversion)"},
    [Q_PLUGIN_DEFAULT_UPSERT] = {
        "INSERT INTO app_plugin_default (appid, appversion, id, pluginname, plugindescription, pluginproperties)"
        " VALUES ($1,$2::bigint,$3,$4,$5,$6) ON CONFLICT (appid, appversion, id) DO UPDATE"
        " SET pluginname=EXCLUDED.pluginname, plugindescription=EXCLUDED.plugindescription,"
        " pluginproperties=EXCLUDED.pluginproperties",
        "INSERT INTO app_plugin_default (appid, appversion, id, pluginname, plugindescription, pluginproperties)"
        " VALUES ($1,$2::bigint,$3,$4,$5,$6) ON DUPLICATE KEY UPDATE pluginname=VALUES(pluginname),"
        " plugindescription=VALUES(plugindescription), pluginproperties=VALUES(pluginproperties)"},
    [Q_FORM_INSERT] = {
        "INSERT INTO app_form (appid, appversion, formid, name, datecreated, datemodified, tablename, json)"
        " VALUES ($1,$2::bigint,$3,$3,now(),now(),$4,$5) ON CONFLICT DO NOTHING",
        "INSERT IGNORE INTO app_form (appid, appversion, formid, name, datecreated, datemodified, tablename, json)"
        " VALUES ($1,$2::bigint,$3,$3,now(),now(),$4,$5)"},
    [Q_PROCDEF_INSERT] = {
        "INSERT INTO shkprocessdefinitions (name, packageid, processdefinitionid, processdefinitioncreated,"
        " processdefinitionversion, state, oid, version) VALUES ($1,$2,$3,"
        " (extract(epoch from now())*1000)::bigint,$4,0,nextval('emu_oid_seq'),0) ON CONFLICT (name) DO NOTHING",
        "INSERT IGNORE INTO SHKProcessDefinitions (name, packageid, processdefinitionid, processdefinitioncreated,"
        " processdefinitionversion, state, oid, version) VALUES ($1,$2,$3,"
        " FLOOR(UNIX_TIMESTAMP(NOW(3))*1000),$4,0,nextval(emu_oid_seq),0)"},
    [Q_GRAPH_UPSERT] = {
        "INSERT INTO emu_process_graph VALUES ($1,$2,$4::bigint,$3,$5) ON CONFLICT (pdefname) DO UPDATE"
        " SET graph=EXCLUDED.graph",
        "INSERT INTO emu_process_graph VALUES ($1,$2,$4::bigint,$3,$5) ON DUPLICATE KEY UPDATE graph=VALUES(graph)"},
    [Q_TOOL_PLUGIN_INSERT] = {
        "INSERT INTO app_package_activity_plugin VALUES ($1,$2,$3,$4::bigint,NULL,"
        "'org.joget.emulator.ToolActions',$5) ON CONFLICT DO NOTHING",
        "INSERT IGNORE INTO app_package_activity_plugin VALUES ($1,$2,$3,$4::bigint,NULL,"
        "'org.joget.emulator.ToolActions',$5)"},
    [Q_PARTICIPANT_INSERT] = {
        "INSERT INTO app_package_participant VALUES ($1,$2,$3,$4::bigint,NULL,$5,$6,NULL) ON CONFLICT DO NOTHING",
        "INSERT IGNORE INTO app_package_participant VALUES ($1,$2,$3,$4::bigint,NULL,$5,$6,NULL)"},
    [Q_ROLE_INSERT] = {"INSERT INTO dir_role VALUES ($1,$2,$2) ON CONFLICT DO NOTHING",
                       "INSERT IGNORE INTO dir_role VALUES ($1,$2,$2)"},
    [Q_GROUP_INSERT] = {"INSERT INTO dir_group (id, name) VALUES ($1,$2) ON CONFLICT DO NOTHING",
                        "INSERT IGNORE INTO dir_group (id, name) VALUES ($1,$2)"},
    [Q_USER_UPSERT] = {
        "INSERT INTO dir_user (id, username, password, firstname, lastname, email, active, timezone, locale)"
        " VALUES ($1,$1,$2,$3,$4,$5,$6::int,'0','') ON CONFLICT (id) DO UPDATE SET password=EXCLUDED.password",
        "INSERT INTO dir_user (id, username, password, firstname, lastname, email, active, timezone, locale)"
        " VALUES ($1,$1,$2,$3,$4,$5,$6::int,'0','') ON DUPLICATE KEY UPDATE password=VALUES(password)"},
    [Q_RESOURCE_INSERT] = {"INSERT INTO shkresourcestable VALUES ($1,$1,nextval('emu_oid_seq'),0) ON CONFLICT DO NOTHING",
                           "INSERT IGNORE INTO SHKResourcesTable VALUES ($1,$1,nextval(emu_oid_seq),0)"},
    [Q_ROLE_SELF_INSERT] = {"INSERT INTO dir_role VALUES ($1,$1,$1) ON CONFLICT DO NOTHING",
                            "INSERT IGNORE INTO dir_role VALUES ($1,$1,$1)"},
    [Q_USER_ROLE_INSERT] = {"INSERT INTO dir_user_role VALUES ($1,$2) ON CONFLICT DO NOTHING",
                            "INSERT IGNORE INTO dir_user_role VALUES ($1,$2)"},
    [Q_GROUP_SELF_INSERT] = {"INSERT INTO dir_group (id, name) VALUES ($1,$1) ON CONFLICT DO NOTHING",
                             "INSERT IGNORE INTO dir_group (id, name) VALUES ($1,$1)"},
    [Q_USER_GROUP_INSERT] = {"INSERT INTO dir_user_group VALUES ($1,$2) ON CONFLICT DO NOTHING",
                             "INSERT IGNORE INTO dir_user_group VALUES ($1,$2)"},
    [Q_SETTING_UPSERT] = {"INSERT INTO wf_setup VALUES ($1,$1,$2,NULL) ON CONFLICT (id) DO UPDATE SET value=EXCLUDED.value",
                          "INSERT INTO wf_setup VALUES ($1,$1,$2,NULL) ON DUPLICATE KEY UPDATE value=VALUES(value)"},
    [Q_META_FIXTURE] = {
        "INSERT INTO emu_meta VALUES ('fixture', $1) ON CONFLICT (key) DO UPDATE SET value = emu_meta.value || ',' || $1",
        "INSERT INTO emu_meta VALUES ('fixture', $1) ON DUPLICATE KEY UPDATE value = emu_meta.value || ',' || $1"},
    [Q_META_LOADED] = {"SELECT count(*) FROM emu_meta WHERE key='fixture'",
                       "SELECT count(*) FROM emu_meta WHERE `key`='fixture'"},
    [Q_ANALYZE] = {"ANALYZE shkprocesses, shkactivities, shkassignmentstable, wf_process_link",
                   "ANALYZE TABLE SHKProcesses, SHKActivities, SHKAssignmentsTable, wf_process_link"},
};

const char *sqlq(qid q) { return g_engine == ENG_MARIADB ? QS[q].my : QS[q].pg; }

/* ---------- schema ---------- */
int db_schema(dbconn *c, int reset)
{
    int my = g_engine == ENG_MARIADB;
    if (reset) {
        sbuf b;
        sb_init(&b);
        dbres *r = db_query(c, sqlq(Q_FD_TABLES), 0, NULL);
        if (!r) return -1;
        int ok = 1;
        if (!my) {
            for (int i = 0; i < db_nrows(r); i++) sb_printf(&b, "DROP TABLE IF EXISTS \"%s\" CASCADE;", db_get(r, i, 0));
            for (int i = 0; PG_TABLES[i]; i++) sb_printf(&b, "DROP TABLE IF EXISTS %s CASCADE;", PG_TABLES[i]);
            sb_add(&b, "DROP SEQUENCE IF EXISTS emu_oid_seq; DROP SEQUENCE IF EXISTS emu_counter_seq;");
            ok = db_ddl(c, b.s) == 0;
        } else {
            for (int i = 0; i < db_nrows(r) && ok; i++) {
                b.len = 0;
                sb_printf(&b, "DROP TABLE IF EXISTS `%s`", db_get(r, i, 0));
                ok = db_exec(c, b.s, 0, NULL) == 0;
            }
            for (int i = 0; MY_TABLES[i] && ok; i++) {
                b.len = 0;
                sb_printf(&b, "DROP TABLE IF EXISTS %s", MY_TABLES[i]);
                ok = db_exec(c, b.s, 0, NULL) == 0;
            }
            ok = ok && db_exec(c, "DROP SEQUENCE IF EXISTS emu_oid_seq", 0, NULL) == 0 &&
                 db_exec(c, "DROP SEQUENCE IF EXISTS emu_counter_seq", 0, NULL) == 0;
        }
        db_free(r);
        sb_free(&b);
        if (!ok) return -1;
    }
    if (!my) return db_ddl(c, PG_SCHEMA);
    for (int i = 0; MY_SCHEMA[i]; i++)
        if (db_exec(c, MY_SCHEMA[i], 0, NULL) < 0) return -1;
    return 0;
}

/* ---------- form data tables (app_fd_<table>), as Hibernate creates them for Joget ---------- */
void db_fd_name(const char *prefix, const char *id, char *out, size_t n)
{
    snprintf(out, n, "%s%s", prefix, id);
    if (g_engine == ENG_POSTGRESQL) /* unquoted identifiers: PostgreSQL folds them to lower case */
        for (char *s = out; *s; s++) *s = (char)tolower((unsigned char)*s);
}

int db_fd_ensure(dbconn *c, const char *table, const char *const *cols, int ncols)
{
    int my = g_engine == ENG_MARIADB;
    const char *p[1] = {table};
    dbres *r = db_query(c, sqlq(Q_FD_COLUMNS), 1, p);
    if (!r) return -1;
    int has_t = db_nrows(r) > 0;
    sbuf b;
    sb_init(&b);
    if (!has_t) {
        if (my)
            sb_printf(&b, "CREATE TABLE IF NOT EXISTS %s (id varchar(255) NOT NULL, dateCreated datetime(6) DEFAULT NULL,"
                          " dateModified datetime(6) DEFAULT NULL, createdBy varchar(255) DEFAULT NULL,"
                          " createdByName varchar(255) DEFAULT NULL, modifiedBy varchar(255) DEFAULT NULL,"
                          " modifiedByName varchar(255) DEFAULT NULL, PRIMARY KEY (id), KEY idx_datecreated (dateCreated),"
                          " KEY idx_createdby (createdBy))" MY_OPTS, table);
        else
            sb_printf(&b, "CREATE TABLE IF NOT EXISTS %s (id varchar(255) NOT NULL PRIMARY KEY, datecreated timestamp with time zone,"
                          " datemodified timestamp with time zone, createdby varchar(255), createdbyname varchar(255),"
                          " modifiedby varchar(255), modifiedbyname varchar(255));", table);
    }
    int added = 0;
    for (int i = 0; i < ncols; i++) {
        int have = 0;
        for (int k = 0; k < db_nrows(r) && !have; k++)
            have = my ? !strcasecmp(db_get(r, k, 0), cols[i]) : !strcmp(db_get(r, k, 0), cols[i]);
        for (int k = 0; k < i && !have; k++) have = !strcasecmp(cols[k], cols[i]); /* listed twice */
        if (have) continue;
        if (my) {
            if (!added) sb_printf(&b, "%sALTER TABLE %s", b.len ? "\x1e" : "", table);
            sb_printf(&b, "%s ADD COLUMN IF NOT EXISTS %s longtext DEFAULT NULL", added ? "," : "", cols[i]);
        } else
            sb_printf(&b, "ALTER TABLE %s ADD COLUMN IF NOT EXISTS %s text;", table, cols[i]);
        added++;
    }
    db_free(r);
    int rc = 0;
    if (b.len && !my) rc = db_ddl(c, b.s);
    else if (b.len) /* MariaDB: one statement at a time (the record separator splits them) */
        for (char *s = b.s, *e; s && rc == 0; s = e ? e + 1 : NULL) {
            e = strchr(s, '\x1e');
            if (e) *e = 0;
            rc = db_ddl(c, s);
        }
    sb_free(&b);
    return rc;
}

void db_fd_upsert_sql(sbuf *b, const char *tbl, const char *cn)
{
    if (g_engine == ENG_MARIADB)
        sb_printf(b, "INSERT INTO %s (id, dateCreated, dateModified, createdBy, modifiedBy, %s)"
                     " VALUES ($1, now(6), now(6), $3, $3, $2) ON DUPLICATE KEY UPDATE %s = VALUES(%s),"
                     " dateModified = now(6), modifiedBy = $3", tbl, cn, cn, cn);
    else
        sb_printf(b, "INSERT INTO %s (id, datecreated, datemodified, createdby, modifiedby, %s)"
                     " VALUES ($1, now(), now(), $3, $3, $2) ON CONFLICT (id) DO UPDATE SET %s = EXCLUDED.%s,"
                     " datemodified = now(), modifiedby = $3", tbl, cn, cn, cn);
}

/* "2024-01-31 12:00:00.5+02" (also T, Z, +HH:MM, +HHMM, no zone = UTC) -> "2024-01-31 10:00:00.5" for MariaDB's
   datetime columns; PostgreSQL takes the text as it is. Unparsable text is passed on (the database reports it). */
const char *db_ts(const char *in, char *out, size_t n)
{
    if (g_engine != ENG_MARIADB || !in) return in;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int used = 0;
    if (sscanf(in, "%4d-%2d-%2d%*1[ T]%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
               &tm.tm_sec, &used) != 6)
        return in;
    const char *s = in + used;
    char frac[16] = "";
    if (*s == '.') {
        size_t k = 0;
        for (s++; isdigit((unsigned char)*s); s++) if (k < 6) frac[k++] = *s;
        frac[k] = 0;
    }
    long off = 0;
    if (*s == '+' || *s == '-') {
        int sign = *s == '-' ? -1 : 1, hh = 0, mm = 0;
        s++;
        if (!isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1])) return in;
        hh = (s[0] - '0') * 10 + (s[1] - '0');
        s += 2;
        if (*s == ':') s++;
        if (isdigit((unsigned char)s[0]) && isdigit((unsigned char)s[1])) { mm = (s[0] - '0') * 10 + (s[1] - '0'); s += 2; }
        off = sign * (hh * 3600L + mm * 60L);
    } else if (*s == 'Z') s++;
    if (*s) return in;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm) - off;
    struct tm u;
    gmtime_r(&t, &u);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%d %H:%M:%S", &u);
    snprintf(out, n, "%s%s%s", base, frac[0] ? "." : "", frac);
    return out;
}

/* ORDER BY col dir as PostgreSQL (C collation) sorts: on MariaDB text compares by bytes (utf8mb4_bin) and NULLs come
   last ascending, first descending */
void db_order(sbuf *b, const char *col, int text, const char *dir)
{
    if (g_engine == ENG_MARIADB)
        sb_printf(b, "(%s IS NULL) %s, %s%s %s", col, dir, col, text ? " COLLATE utf8mb4_bin" : "", dir);
    else
        sb_printf(b, "%s %s", col, dir);
}
