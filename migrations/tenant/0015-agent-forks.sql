-- issue 12 item 7: a fork records where it came from (the listing, agent, version and hash it
-- copied), so its provenance survives the source's later versions or deletion.
ALTER TABLE agents ADD COLUMN forked_from TEXT;                          -- JSON, or NULL
