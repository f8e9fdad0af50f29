"""The engine fixtures of the sending tests (a scriptable provider that keeps what it sent)
and the campaign tests' direct data writer."""

from tests.campaigns.conftest import world
from tests.sending.conftest import engine_settings, make_dispatcher, sms

__all__ = ["engine_settings", "make_dispatcher", "sms", "world"]
