-- Who runs a job (issue 15): the process that created it, as its pid and start time (storage/sqlite/jobs.py).
-- A job whose process is gone is failed at once by the next sweep (a server's start, then every 30 s),
-- never the job of a process still running. NULL for jobs from before: their heartbeat alone decides.
ALTER TABLE jobs ADD COLUMN owner TEXT;
