"""Clarion: send one message by SMS, RCS or WhatsApp to a whole contact list."""

__version__ = "0.1.0"
