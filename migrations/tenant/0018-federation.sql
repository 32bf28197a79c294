-- issue 12 item 8: an agent imported from a signed federation package records where it came
-- from (JSON: instance key id, source platform, source agent, version, hash, and the catalog
-- entry when it came through the ecosystem catalog), so a revocation of that version reaches it.
ALTER TABLE agents ADD COLUMN imported_from TEXT;                        -- JSON, or NULL
