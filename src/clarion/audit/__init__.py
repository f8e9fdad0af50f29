"""The audit trail: one row per change, written in the transaction that makes it."""
