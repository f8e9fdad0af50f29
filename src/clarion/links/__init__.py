"""Tracked links: per-recipient short links, their redirects and clicks."""
