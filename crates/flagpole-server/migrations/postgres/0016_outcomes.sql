-- Outcomes of flag-controlled code paths (issues 17 and 18): what `guard` and `shadow` in
-- the SDKs report per (flag, flag version, variant, kind) and window, kind being `guard`,
-- `shadow_current` or `shadow_new`. Like the evaluation counters of 0006: hourly rows
-- upserted by adding (`n = n + excluded.n`), one commit's batches summed first, daily
-- rows recomputed by the rollup from the hours (marked in `eval_rollup_pending`), both
-- pruned by the same retention as the evaluation counters.
--
-- The latency histogram (fixed log-scale buckets, flagpole-core `wire::latency`) is kept
-- sparse, one row per non-empty bucket, so adding two histograms is an upsert per bucket.
--
-- Additive only (expand): an older server ignores these tables.

create table outcome_hour (
  environment_id bigint not null references environment (id) on delete cascade,
  flag_key text not null,
  flag_version bigint not null,
  variant text not null,
  kind text not null,
  hour bigint not null,
  calls bigint not null,
  errors bigint not null,
  mismatches bigint not null,
  timeouts bigint not null,
  skipped bigint not null,
  duration_us bigint not null,
  last_at bigint not null,
  primary key (environment_id, flag_key, hour, flag_version, variant, kind)
);

create table outcome_latency_hour (
  environment_id bigint not null references environment (id) on delete cascade,
  flag_key text not null,
  flag_version bigint not null,
  variant text not null,
  kind text not null,
  hour bigint not null,
  bucket bigint not null,
  n bigint not null,
  primary key (environment_id, flag_key, hour, flag_version, variant, kind, bucket)
);

create table outcome_day (
  environment_id bigint not null references environment (id) on delete cascade,
  flag_key text not null,
  flag_version bigint not null,
  variant text not null,
  kind text not null,
  day bigint not null,
  calls bigint not null,
  errors bigint not null,
  mismatches bigint not null,
  timeouts bigint not null,
  skipped bigint not null,
  duration_us bigint not null,
  last_at bigint not null,
  primary key (environment_id, flag_key, day, flag_version, variant, kind)
);

create table outcome_latency_day (
  environment_id bigint not null references environment (id) on delete cascade,
  flag_key text not null,
  flag_version bigint not null,
  variant text not null,
  kind text not null,
  day bigint not null,
  bucket bigint not null,
  n bigint not null,
  primary key (environment_id, flag_key, day, flag_version, variant, kind, bucket)
);
