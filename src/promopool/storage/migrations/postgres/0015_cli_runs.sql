-- Imports and generations started from the CLI (issue 17, /metrics): the CLI is a process of its own, so it
-- counts its runs here, where a server's /metrics reads them at scrape time. One row per command and result
-- ('started', then 'succeeded' or 'failed'); `codes` adds up the codes the finished runs stored.
CREATE TABLE cli_runs (
    command  text NOT NULL,
    result   text NOT NULL,
    runs     bigint NOT NULL DEFAULT 0 CHECK (runs >= 0),
    codes    bigint NOT NULL DEFAULT 0 CHECK (codes >= 0),
    PRIMARY KEY (command, result)
);
