"""Live events (server-sent events) for campaigns and imports, whichever process changed them."""
