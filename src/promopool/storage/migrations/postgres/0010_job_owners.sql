-- Who runs a job (issue 15): the key of the session advisory lock its process holds for as long as it lives
-- (storage/postgres/jobs.py). A job whose owner's lock is free has lost its process and is failed at once by
-- the next sweep (any server's start, then every 30 s); several servers sharing the database never fail each
-- other's jobs. NULL for jobs from before: their heartbeat alone decides. (0009 is SQLite's alone.)
ALTER TABLE jobs ADD COLUMN owner bigint;
