-- issue 11 item 2: a logo uploaded in the admin lives in the platform's own database; the
-- blueprint's branding.logo points at it by a platform-local URL (/brand/logo-<hash>.<ext>).
-- The name carries the content's hash, so a stored asset never changes (served immutable).
CREATE TABLE brand_assets (
  name         TEXT PRIMARY KEY,                                       -- logo-<16 hex>.<ext>
  content_type TEXT NOT NULL,
  bytes        BLOB NOT NULL,
  created_at   INTEGER NOT NULL
) STRICT;
