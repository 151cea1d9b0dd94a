"""PostgreSQL engine (asyncpg): for several workers or machines sharing one database."""
