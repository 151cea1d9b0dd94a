"""SQLite engine: the embedded default. WAL mode, synchronous=FULL, one writer thread, pooled readers."""
