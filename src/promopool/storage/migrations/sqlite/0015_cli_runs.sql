-- Imports and generations started from the CLI (issue 17, /metrics): the CLI is a process of its own, so it
-- counts its runs here, where a server's /metrics reads them at scrape time. One row per command and result
-- ('started', then 'succeeded' or 'failed'); `codes` adds up the codes the finished runs stored.
CREATE TABLE cli_runs (
    command  TEXT NOT NULL,
    result   TEXT NOT NULL,
    runs     INTEGER NOT NULL DEFAULT 0 CHECK (runs >= 0),
    codes    INTEGER NOT NULL DEFAULT 0 CHECK (codes >= 0),
    PRIMARY KEY (command, result)
);
