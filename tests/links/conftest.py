"""The engine fixtures of the sending tests (a scriptable provider that keeps what it sent)."""

from tests.sending.conftest import engine_settings, make_dispatcher, sms

__all__ = ["engine_settings", "make_dispatcher", "sms"]
