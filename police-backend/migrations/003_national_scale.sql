-- At national scale: intake looks up a beacon record by its beacon ID for every alert, ended
-- records included, which the partial unique index does not cover.
CREATE INDEX beacons_by_beacon_id ON beacons (beacon_id, installed_at);

-- The queues are read a page at a time, in their order (most urgent first, then the oldest), so
-- the urgency is stored: computed by the service from kind and detail when an alert is stored or
-- repeated. Existing rows: the same rule in SQL (a fault's reasons from its JSON text).
ALTER TABLE alerts ADD COLUMN urgency smallint NOT NULL DEFAULT 0;
UPDATE alerts SET urgency = CASE kind
    WHEN 'NO_PRESENCE' THEN 3
    WHEN 'SUSPECTED_SPOOFING' THEN 2
    WHEN 'RELAY_SILENT' THEN 1
    WHEN 'BEACON_FAULT' THEN CASE WHEN EXISTS (
      SELECT 1 FROM unnest(string_to_array(substring(detail FROM '"reasons":"([^"]*)"'), ',')) AS r (reason)
       WHERE btrim(r.reason) IN ('battery_depleted', 'clock_not_set')) THEN 2 ELSE 1 END
    ELSE 0 END;

-- Open alerts only: the queue pages and counts read nothing else.
CREATE INDEX alerts_open ON alerts (queue, urgency DESC, occurred_at, received_at, id) WHERE state IN ('open', 'acknowledged', 'dispatched');
