"""Users of an account, their passwords and login sessions."""
