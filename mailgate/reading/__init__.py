"""Reading a mail: raw bytes to `ParsedMail` (mime/, charsets, header fields) and
everything read off it: quotes and the text written (replytext/), language, the ticket tag,
screening for loops and reports, details, the syntax of staff `#commands`, our own marks,
sender verification.

Pure: it reads, never writes. It may import `store` (types and the key), `config` and
`moments`."""
