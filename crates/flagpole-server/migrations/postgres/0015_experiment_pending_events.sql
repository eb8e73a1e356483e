-- Events that reach a running experiment's metric before their unit's first exposure
-- (issue 16). Exposures and events are sent by whichever client saw them: a frontend
-- evaluates the flag, a backend tracks the purchase, each flushing on its own clock, so
-- the event's batch is often stored before the exposure's. Dropping such an event (what
-- 0014's writer did) loses real conversions; scanning raw events when an exposure lands
-- would cost a query over the partitioned raw tables per group.
--
-- Instead the ingest writer holds each such event here, per experiment, metric and unit,
-- with what the metric reads of it (`a`: the value, or 1; `denominator`: 0/1, the side
-- of a ratio). When the unit's exposure is stored, its held events are applied if they
-- fall within the metric's window after the first exposure, and deleted either way.
-- Bounded in time: `expires_at` is the event's time plus the metric's window (72 hours
-- for a metric without one), after which no exposure can make it count in practice, and
-- the telemetry upkeep deletes the row (`store::rollup::apply_retention`).
--
-- Expand only: an older server neither fills nor reads the table.

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
