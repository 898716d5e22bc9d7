"""MIME details behind parse(): charsets, headers, parts, names, reports, old formats."""
