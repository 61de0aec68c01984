-- App backend schema v1. No personal data: no names, addresses, phone numbers or IP addresses.
-- Times are Unix milliseconds (bigint); beacon times are Unix seconds as the beacon signed them.

CREATE TABLE quarantines (
  id uuid PRIMARY KEY,
  beacon_id text NOT NULL,
  -- SHA-256 of SK_T_PAST (hex); the key itself is never stored. NULL once ended.
  sk_t_past_hash text,
  t_past bigint NOT NULL,
  -- SK_BEACON sealed with AES-256-GCM under the key-encryption key. NULL once ended.
  sk_beacon_sealed bytea,
  window_seconds integer NOT NULL,
  state text NOT NULL CHECK (state IN ('registered', 'monitoring', 'ended')),
  registered_at bigint NOT NULL,
  enabled_at bigint,
  ended_at bigint,
  last_presence_at bigint,
  last_received_at bigint,
  last_counter bigint,
  clock_offset_seconds double precision NOT NULL DEFAULT 0,
  offset_updated_at bigint NOT NULL,
  battery smallint,
  flags smallint,
  deadline bigint,
  open_alert_id uuid,
  drift_alerted boolean NOT NULL DEFAULT false,
  low_battery_alerted boolean NOT NULL DEFAULT false
);

CREATE UNIQUE INDEX quarantines_key_hash ON quarantines (sk_t_past_hash) WHERE sk_t_past_hash IS NOT NULL;
CREATE UNIQUE INDEX quarantines_active_beacon ON quarantines (beacon_id) WHERE state <> 'ended';
-- The watchdog reads only what is due: cost follows due rows, not the number of quarantines.
CREATE INDEX quarantines_due ON quarantines (deadline) WHERE state = 'monitoring' AND open_alert_id IS NULL;

-- The police backend may enable a beacon before the health authority registers it.
CREATE TABLE pending_enables (
  beacon_id text PRIMARY KEY,
  enabled_at bigint NOT NULL
);

CREATE TABLE alerts (
  id uuid PRIMARY KEY,
  quarantine_id uuid NOT NULL REFERENCES quarantines (id),
  beacon_id text NOT NULL,
  kind text NOT NULL,
  created_at bigint NOT NULL,
  gap_started_at bigint,
  related_alert_id uuid,
  evidence_until bigint,
  closed_at bigint,
  detail jsonb NOT NULL DEFAULT '{}'
);

CREATE INDEX alerts_quarantine ON alerts (quarantine_id, created_at);

-- Written in the same transaction as the alert it carries; delivered at least once, with its id
-- as the idempotency key so the police backend shows it once.
CREATE TABLE outbox (
  id uuid PRIMARY KEY,
  -- Insertion order: alerts reach the police backend in the order they were decided.
  seq bigserial NOT NULL,
  alert_id uuid NOT NULL REFERENCES alerts (id),
  payload jsonb NOT NULL,
  created_at bigint NOT NULL,
  attempts integer NOT NULL DEFAULT 0,
  next_attempt_at bigint NOT NULL,
  lease_until bigint,
  delivered_at bigint,
  last_error text
);

CREATE INDEX outbox_pending ON outbox (seq) WHERE delivered_at IS NULL;

-- JWT IDs seen from the health authority, kept until the token would have expired anyway.
CREATE TABLE used_jtis (
  jti text PRIMARY KEY,
  expires_at bigint NOT NULL
);
