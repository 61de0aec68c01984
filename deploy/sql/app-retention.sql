-- App backend: what to delete once it is no longer needed (docs/operations.md, "Retention").
-- Run as the app backend's database user, daily, on one replica's database (it is shared):
--   psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -f deploy/sql/app-retention.sql
-- One statement, so one transaction. Edit the periods below. An alert that has not reached the
-- police backend yet is never deleted, and neither is anything of a running quarantine but
-- delivered outbox copies. Each count is reported as a NOTICE.
DO $retention$
DECLARE
  -- An ended quarantine (its keys are already NULL) keeps its rows this long, then loses them all.
  ended_days integer := 30;
  -- Delivered outbox rows: the police backend holds its own copy of each alert.
  delivered_outbox_days integer := 7;
  -- An enable from the police backend that no registration followed.
  pending_enable_days integer := 30;
  now_ms bigint := (extract(epoch FROM clock_timestamp()) * 1000)::bigint;
  day_ms constant bigint := 86400000;
  expired uuid[];
  n bigint;
BEGIN
  expired := ARRAY(
    SELECT q.id FROM quarantines q
     WHERE q.state = 'ended' AND q.ended_at < now_ms - ended_days * day_ms
       AND NOT EXISTS (SELECT 1 FROM outbox o JOIN alerts a ON a.id = o.alert_id
                        WHERE a.quarantine_id = q.id AND o.delivered_at IS NULL));
  RAISE NOTICE 'ended quarantines purged: %', cardinality(expired);

  DELETE FROM outbox o USING alerts a WHERE o.alert_id = a.id AND a.quarantine_id = ANY (expired);
  DELETE FROM alerts WHERE quarantine_id = ANY (expired);
  GET DIAGNOSTICS n = ROW_COUNT;
  RAISE NOTICE 'their alerts: %', n;
  DELETE FROM absences WHERE quarantine_id = ANY (expired);
  DELETE FROM quarantines WHERE id = ANY (expired);

  DELETE FROM outbox
   WHERE delivered_at IS NOT NULL AND delivered_at < now_ms - delivered_outbox_days * day_ms;
  GET DIAGNOSTICS n = ROW_COUNT;
  RAISE NOTICE 'delivered outbox rows: %', n;

  DELETE FROM pending_enables WHERE enabled_at < now_ms - pending_enable_days * day_ms;
  GET DIAGNOSTICS n = ROW_COUNT;
  RAISE NOTICE 'stale pending enables: %', n;

  -- The service already drops these on each health-authority request; this covers quiet days.
  DELETE FROM used_jtis WHERE expires_at < now_ms;
END
$retention$;
