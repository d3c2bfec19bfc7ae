-- API clients of online back-office systems share the devices table: same token handling, another kind.
ALTER TABLE devices ADD COLUMN kind TEXT NOT NULL DEFAULT 'device';
