-- What SDKs report back (issue 15): evaluation counters, exposures, tracked events, the
-- applications that send them, and the batch ids that make redelivery harmless.
--
-- Counters are aggregated in memory across every batch of one commit, then upserted
-- (`on conflict ... do update set n = n + excluded.n`): the rows written per commit
-- follow the distinct (flag, version, variant, reason, rule, error, hour) seen in it, not
-- the number of SDKs. Absent variant, rule and error are stored as '' rather than null,
-- because null is never equal to null in a unique key and would defeat the upsert.
--
-- Times are epoch milliseconds, like everywhere else; `hour` and `day` are the start of
-- the UTC hour or day a count's window starts in.
--
-- Additive only (expand): an older server ignores every table here.

create table eval_count_hour (
  environment_id bigint not null references environment (id) on delete cascade,
  flag_key text not null,
  flag_version bigint not null,
  variant text not null,
  reason text not null,
  rule text not null,
  error text not null,
  hour bigint not null,
  n bigint not null,
  -- End of the latest window counted here: "last evaluated" to the second, not the hour.
  last_at bigint not null,
  -- Flag and time lead the key: insights read one flag over a time range, lifecycle
  -- reads the latest hour of every flag of an environment.
  primary key (environment_id, flag_key, hour, flag_version, variant, reason, rule, error)
);

-- Kept for 13 months where hours are kept for 90 days. Written only by the rollup
-- (src/ingest/upkeep.rs), which recomputes whole days from their hours.
create table eval_count_day (
  environment_id bigint not null references environment (id) on delete cascade,
  flag_key text not null,
  flag_version bigint not null,
  variant text not null,
  reason text not null,
  rule text not null,
  error text not null,
  day bigint not null,
  n bigint not null,
  last_at bigint not null,
  primary key (environment_id, flag_key, day, flag_version, variant, reason, rule, error)
);

-- Days whose hours changed since their daily rows were computed, marked in the
-- transaction that changes the hours. The rollup locks a mark (`for update`), recomputes
-- the day and deletes the mark in one transaction: a write that lands meanwhile waits
-- for the lock, then marks the day again, so it is rolled up next time rather than lost.
create table eval_rollup_pending (
  environment_id bigint not null references environment (id) on delete cascade,
  day bigint not null,
  marked_at bigint not null,
  primary key (environment_id, day)
);

-- Raw rows, one per exposure and per tracked event, partitioned by day of `at_ms` so that
-- retention drops a partition (instant, no vacuum) instead of deleting rows. Partitions
-- are named `<table>_pYYYYMMDD` and created ahead by the upkeep loop (and by the writer
-- for a day it has not seen, since events may be up to 7 days old). No foreign key to
-- environment: rows of a deleted environment age out with their partition.
create table exposure (
  environment_id bigint not null,
  flag_key text not null,
  flag_version bigint not null,
  variant text not null,
  context_key text not null,
  at_ms bigint not null
) partition by range (at_ms);
create index exposure_flag on exposure (environment_id, flag_key, at_ms);

create table tracked_event (
  environment_id bigint not null,
  name text not null,
  context_key text not null,
  value double precision,
  -- The event's properties as a JSON object (text, like every document here).
  properties text not null,
  at_ms bigint not null
) partition by range (at_ms);
create index tracked_event_name on tracked_event (environment_id, name, at_ms);

-- Applications reporting per environment: what the insights page lists as connected.
-- `evaluations` sums their counts, `dropped` what their SDKs had to drop (buffer full).
create table sdk_app (
  environment_id bigint not null references environment (id) on delete cascade,
  app text not null,
  app_version text not null,
  sdk text not null,
  batches bigint not null,
  evaluations bigint not null,
  dropped bigint not null,
  first_seen bigint not null,
  last_seen bigint not null,
  primary key (environment_id, app, app_version, sdk)
);

-- Ids of stored batches, written in the transaction that stores the batch: a batch whose
-- id is here was counted, so a redelivery is acknowledged without counting it again.
-- Kept at least 24 hours (the SDK's promise), pruned by the upkeep loop.
create table telemetry_batch (
  environment_id bigint not null,
  id text not null,
  received_at bigint not null,
  primary key (environment_id, id)
);
create index telemetry_batch_received on telemetry_batch (received_at);
