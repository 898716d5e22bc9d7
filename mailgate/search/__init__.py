"""Full-text search over tickets: the query language, the index on each database, the engine.

Between `reports | service` and `intake | flows`: may import desk, reading, store, config.
The index is kept by the database in the transaction that writes the article, attachment,
reference, ticket or organisation (FTS5 triggers in sqlite.py, GIN expression indexes in
postgres.py); the engine only reads."""
