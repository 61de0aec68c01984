-- K_enc ‖ K_mac sealed under the KEK beside SK_BEACON, so a key-cache miss (the rule at national
-- scale, where each relay uploads every 5 minutes) opens 48 bytes instead of running the HKDF.
-- Rows registered before this migration have none: the validator derives from SK_BEACON for them.
ALTER TABLE quarantines ADD COLUMN keys_sealed bytea;
