-- Idempotency-Key on every mutating native request (issue 17). A record keeps, beside its scope:
-- fingerprint  a digest of the request where the scope alone cannot tell two requests apart (a PATCH body,
--              an upload); NULL where the scope says it all (claims, redeems). Another one is refused.
-- answer       the first answer as the JSON of its value, for requests whose answer is no row to read back
--              (a PATCH, a DELETE, an import's report, a key's metadata: never its secret); NULL otherwise.
ALTER TABLE idempotency_keys ADD COLUMN fingerprint TEXT;
ALTER TABLE idempotency_keys ADD COLUMN answer TEXT;
