"""Messages: one per recipient of a campaign. The table is the send queue, and every change
of a message's status is one of the named transitions in `transitions.py`."""
