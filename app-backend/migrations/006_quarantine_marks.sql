-- Every write to a quarantine leaves a mark: when the watchdog should next look at it (`due`) and
-- which transaction wrote it (`xid`). The watchdog reads marks by due, the status caches by xid,
-- so `quarantines` keeps no index on a column a presence update moves: with room left on each
-- page (fillfactor), that update stays on its page and touches no index (a HOT update), where it
-- used to insert into all five. Marks are only ever appended, so both their indexes grow at the
-- right edge. Measured in `npm run bench:write-layouts` and `bench:db-writes` (docs/BENCHMARKS.md).
CREATE TABLE quarantine_marks (
  -- The deadline of a monitored quarantine; otherwise a minute after the change, so every
  -- replica's status cache has read it before the watchdog drops it.
  due bigint NOT NULL,
  quarantine_id uuid NOT NULL,
  xid bigint NOT NULL DEFAULT pg_current_xact_id()::text::bigint
);

CREATE INDEX quarantine_marks_due ON quarantine_marks (due);
CREATE INDEX quarantine_marks_xid ON quarantine_marks (xid);

-- A statement trigger, so no writer (tools and tests included) can forget its marks: one INSERT
-- per statement from the rows it wrote, not a call per row.
CREATE FUNCTION quarantines_mark() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO quarantine_marks (due, quarantine_id)
  SELECT CASE WHEN n.state = 'monitoring' AND n.deadline IS NOT NULL THEN n.deadline
              ELSE n.status_changed_at + 60000 END,
         n.id
    FROM written n;
  RETURN NULL;
END
$$;

CREATE TRIGGER quarantines_marked_on_insert AFTER INSERT ON quarantines
  REFERENCING NEW TABLE AS written FOR EACH STATEMENT EXECUTE FUNCTION quarantines_mark();
CREATE TRIGGER quarantines_marked_on_update AFTER UPDATE ON quarantines
  REFERENCING NEW TABLE AS written FOR EACH STATEMENT EXECUTE FUNCTION quarantines_mark();

-- Today's rows: each monitored deadline gets its mark; the rest need none (their change is old).
INSERT INTO quarantine_marks (due, quarantine_id)
SELECT deadline, id FROM quarantines WHERE state = 'monitoring' AND deadline IS NOT NULL;

DROP INDEX quarantines_due;
DROP INDEX quarantines_status_xid;
ALTER TABLE quarantines DROP COLUMN status_xid;
-- Room for an updated row on its own page. Pages already full gain it as rows move and vacuum
-- runs (or at once with VACUUM FULL in a maintenance window: docs/operations.md).
ALTER TABLE quarantines SET (fillfactor = 70);
