-- Reverts the baseline: drops every table of the Prefect 3.9.1 schema and alembic_version
-- (indexes, constraints and sequences go with them), the enum types and the pg_trgm extension,
-- leaving an empty schema.

DROP TABLE IF EXISTS
    agent,
    block_document_reference,
    block_schema_reference,
    flow_run_input,
    task_run_state,
    flow_run_state,
    task_run_state_cache,
    artifact_collection,
    artifact,
    task_run,
    flow_run,
    log,
    deployment_schedule,
    deployment_version,
    deployment,
    block_document,
    block_schema,
    block_type,
    worker,
    work_pool,
    work_queue,
    flow,
    concurrency_limit,
    concurrency_limit_v2,
    saved_search,
    configuration,
    csrf_token,
    variable,
    automation_related_resource,
    composite_trigger_child_firing,
    automation_bucket,
    automation_held_event,
    automation_event_follower,
    automation,
    event_resources,
    events,
    alembic_version
    CASCADE;

DROP TYPE IF EXISTS deployment_status;
DROP TYPE IF EXISTS state_type;
DROP TYPE IF EXISTS work_pool_status;
DROP TYPE IF EXISTS work_queue_status;
DROP TYPE IF EXISTS worker_status;

DROP EXTENSION IF EXISTS pg_trgm;
