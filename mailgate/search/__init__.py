"""Full-text search over tickets: the query language, the index on each database, the engine.

Between `reports | service` and `intake | flows`: may import desk, reading, store, config.
The index is written by database triggers (sqlite.py, postgres.py), in the transaction that
writes the article, attachment, reference or ticket; the engine only reads."""
