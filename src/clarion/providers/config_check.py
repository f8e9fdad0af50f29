"""Start-up check of the selected providers' settings: `clarion serve` and `clarion worker`
stop at start with one sentence naming every missing setting."""

import os

from clarion.config import Settings
from clarion.providers.base import ProviderConfigError

# (channel setting, provider) -> settings that must be set; a tuple inside means "one of".
REQUIRED: dict[tuple[str, str], list[str | tuple[str, ...]]] = {
    ("sms_provider", "twilio"): [
        "twilio_account_sid",
        "twilio_auth_token",
        ("twilio_from", "twilio_messaging_service_sid"),
    ],
    ("sms_provider", "smpp"): [
        "smpp_host",
        "smpp_system_id",
        "smpp_password",
        "smpp_source_addr",
    ],
    ("whatsapp_provider", "cloud"): [
        "whatsapp_token",
        "whatsapp_phone_number_id",
        "whatsapp_app_secret",
        "whatsapp_verify_token",
    ],
    ("rcs_provider", "rbm"): ["rbm_agent_id", "rbm_service_account_file", "rbm_client_token"],
}

CHANNEL_SETTING = {"sms": "sms_provider", "whatsapp": "whatsapp_provider", "rcs": "rcs_provider"}


def env_name(setting: str) -> str:
    return f"CLARION_{setting.upper()}"


def missing_for(settings: Settings, channel_setting: str) -> list[str]:
    """The environment names of the settings the selected provider of a channel lacks."""
    provider = getattr(settings, channel_setting)
    missing: list[str] = []
    for required in REQUIRED.get((channel_setting, provider), []):
        names = required if isinstance(required, tuple) else (required,)
        if not any(getattr(settings, n) for n in names):
            missing.append(" or ".join(env_name(n) for n in names))
    return missing


def _problems(settings: Settings, channel_settings: list[str]) -> tuple[list[str], list[str]]:
    sentences: list[str] = []
    all_missing: list[str] = []
    for channel_setting in channel_settings:
        provider = getattr(settings, channel_setting)
        missing = missing_for(settings, channel_setting)
        if missing:
            all_missing += missing
            sentences.append(
                f"{env_name(channel_setting)}={provider} needs {', '.join(missing)} to be set"
            )
        account_file = settings.rbm_service_account_file
        if (
            channel_setting == "rcs_provider"
            and provider == "rbm"
            and account_file
            and not os.path.isfile(account_file)
        ):
            all_missing.append("CLARION_RBM_SERVICE_ACCOUNT_FILE")
            sentences.append(
                f"CLARION_RBM_SERVICE_ACCOUNT_FILE={account_file} is not a readable file"
            )
    return sentences, all_missing


def check(settings: Settings, channels: list[str] | None = None) -> None:
    """Raise ProviderConfigError naming every missing setting of the selected providers
    (of every channel, or only `channels`)."""
    channel_settings = [CHANNEL_SETTING[c] for c in channels or list(CHANNEL_SETTING)]
    sentences, missing = _problems(settings, channel_settings)
    uses_simulator = any(getattr(settings, c) == "simulator" for c in channel_settings)
    if uses_simulator and settings.simulator_url and not settings.simulator_secret:
        # Its receipts arrive at /webhooks/simulator: unsigned, anyone could forge them.
        missing.append("CLARION_SIMULATOR_SECRET")
        sentences.append(
            "CLARION_SIMULATOR_URL needs CLARION_SIMULATOR_SECRET to be set (the same value "
            "as for `clarion simulator`, which signs its receipts with it)"
        )
    if sentences:
        raise ProviderConfigError("; ".join(sentences) + ".", missing)
