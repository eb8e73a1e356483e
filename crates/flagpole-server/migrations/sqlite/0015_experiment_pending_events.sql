-- SQLite dialect of postgres/0015_experiment_pending_events.sql (the reasons are written
-- there): events held until their unit's first exposure is stored.

create table experiment_pending_event (
  experiment_id bigint not null references experiment (id) on delete cascade,
  metric text not null,
  unit text not null,
  denominator bigint not null,
  at_ms bigint not null,
  a double precision not null,
  expires_at bigint not null
);
create index experiment_pending_event_unit on experiment_pending_event (experiment_id, unit);
create index experiment_pending_event_expiry on experiment_pending_event (expires_at);
