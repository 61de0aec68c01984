-- Police backend: what to delete once it is no longer needed (docs/operations.md, "Retention").
-- Run as the police backend's database user, daily:
--   psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -f deploy/sql/police-retention.sql
-- One statement, so one transaction. Edit the periods below: the case period is a legal
-- decision, not a technical one. The audit log is never touched (append-only: its trigger
-- refuses UPDATE and DELETE, and this script does not try); docs/operations.md says how to
-- archive it. Officers are never deleted (reviews and the audit log name them): disable them.
DO $retention$
DECLARE
  -- An ended case keeps its address, case reference, alerts, reviews and absences this long.
  ended_days integer := 90;
  -- Commands the app backend has confirmed.
  command_days integer := 30;
  -- Sessions that have expired or been signed out.
  session_days integer := 1;
  now_ms bigint := (extract(epoch FROM clock_timestamp()) * 1000)::bigint;
  day_ms constant bigint := 86400000;
  expired uuid[];
  n bigint;
BEGIN
  -- Never a case with an alert still under review.
  expired := ARRAY(
    SELECT b.id FROM beacons b
     WHERE b.status = 'ended' AND b.ended_at < now_ms - ended_days * day_ms
       AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.beacon_record = b.id
                        AND a.state IN ('open', 'acknowledged', 'dispatched')));
  RAISE NOTICE 'ended cases purged: %', cardinality(expired);

  DELETE FROM reviews r USING alerts a WHERE r.alert_id = a.id AND a.beacon_record = ANY (expired);
  DELETE FROM alerts WHERE beacon_record = ANY (expired);
  DELETE FROM commands WHERE beacon_record = ANY (expired);
  DELETE FROM absences WHERE beacon_record = ANY (expired);
  DELETE FROM beacons WHERE id = ANY (expired);

  -- Alerts for a beacon this backend never registered, once settled.
  DELETE FROM reviews r USING alerts a
   WHERE r.alert_id = a.id AND a.beacon_record IS NULL AND a.state IN ('resolved', 'info')
     AND a.received_at < now_ms - ended_days * day_ms;
  DELETE FROM alerts
   WHERE beacon_record IS NULL AND state IN ('resolved', 'info')
     AND received_at < now_ms - ended_days * day_ms;
  GET DIAGNOSTICS n = ROW_COUNT;
  RAISE NOTICE 'settled alerts of unregistered beacons: %', n;

  DELETE FROM commands WHERE done_at IS NOT NULL AND done_at < now_ms - command_days * day_ms;
  GET DIAGNOSTICS n = ROW_COUNT;
  RAISE NOTICE 'finished commands: %', n;

  DELETE FROM sessions
   WHERE expires_at < now_ms - session_days * day_ms
      OR revoked_at < now_ms - session_days * day_ms;
  GET DIAGNOSTICS n = ROW_COUNT;
  RAISE NOTICE 'old sessions: %', n;
END
$retention$;
