"""mailgate: an email-gateway ticketing daemon."""
