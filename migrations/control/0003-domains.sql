-- Custom domains mapped to platforms (besides <slug>.<base-domain>).
CREATE TABLE domains (
  host        TEXT PRIMARY KEY,                -- lowercase, no port
  platform_id TEXT NOT NULL REFERENCES platforms(id),
  created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX domains_platform ON domains(platform_id);
