-- Reverts the baseline: drops every table of the Prefect 3.9.1 schema (indexes go with their
-- tables) and alembic_version, leaving an empty database. Children are dropped before their
-- parents, so the implicit DELETE of each DROP TABLE never violates a foreign key even when
-- foreign_keys=ON and the tables hold rows.

DROP TABLE IF EXISTS agent;
DROP TABLE IF EXISTS block_document_reference;
DROP TABLE IF EXISTS block_schema_reference;
DROP TABLE IF EXISTS flow_run_input;
DROP TABLE IF EXISTS task_run_state;
DROP TABLE IF EXISTS flow_run_state;
DROP TABLE IF EXISTS task_run_state_cache;
DROP TABLE IF EXISTS artifact_collection;
DROP TABLE IF EXISTS artifact;
DROP TABLE IF EXISTS task_run;
DROP TABLE IF EXISTS flow_run;
DROP TABLE IF EXISTS log;
DROP TABLE IF EXISTS deployment_schedule;
DROP TABLE IF EXISTS deployment_version;
DROP TABLE IF EXISTS deployment;
DROP TABLE IF EXISTS block_document;
DROP TABLE IF EXISTS block_schema;
DROP TABLE IF EXISTS block_type;
DROP TABLE IF EXISTS worker;
DROP TABLE IF EXISTS work_pool;
DROP TABLE IF EXISTS work_queue;
DROP TABLE IF EXISTS flow;
DROP TABLE IF EXISTS concurrency_limit;
DROP TABLE IF EXISTS concurrency_limit_v2;
DROP TABLE IF EXISTS saved_search;
DROP TABLE IF EXISTS configuration;
DROP TABLE IF EXISTS csrf_token;
DROP TABLE IF EXISTS variable;
DROP TABLE IF EXISTS automation_related_resource;
DROP TABLE IF EXISTS composite_trigger_child_firing;
DROP TABLE IF EXISTS automation_bucket;
DROP TABLE IF EXISTS automation_held_event;
DROP TABLE IF EXISTS automation_event_follower;
DROP TABLE IF EXISTS automation;
DROP TABLE IF EXISTS event_resources;
DROP TABLE IF EXISTS events;
DROP TABLE IF EXISTS alembic_version;
