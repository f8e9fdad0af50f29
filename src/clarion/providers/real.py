"""Build the real (non-simulator) provider selected for a channel.

`clarion.providers.registry.build_providers` calls `build_real_provider(settings, channel)`
for every channel whose provider is not the simulator.
"""

from clarion.config import Settings
from clarion.providers import config_check
from clarion.providers.base import Provider
from clarion.providers.rbm import RbmProvider
from clarion.providers.smpp.provider import SmppProvider
from clarion.providers.twilio import TwilioProvider
from clarion.providers.whatsapp_cloud import WhatsAppCloudProvider


def build_real_provider(settings: Settings, channel: str) -> Provider | None:
    """The provider selected by CLARION_<CHANNEL>_PROVIDER when it is a real one (None for
    the simulator). Raises ProviderConfigError when its settings are missing."""
    config_check.check(settings, [channel])
    if channel == "sms" and settings.sms_provider == "twilio":
        return TwilioProvider(settings)
    if channel == "sms" and settings.sms_provider == "smpp":
        return SmppProvider(settings)
    if channel == "whatsapp" and settings.whatsapp_provider == "cloud":
        return WhatsAppCloudProvider(settings)
    if channel == "rcs" and settings.rcs_provider == "rbm":
        return RbmProvider(settings)
    return None
