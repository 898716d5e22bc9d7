"""Reading a plain-text reply: what marks its quoted original and the signatures clients add,
per language (languages.toml), and where they are in a mail (headers)."""
