"""Which provider serves each channel, from settings.

`build_providers(settings)` answers `{channel: provider}`. The simulator is the default of
every channel (in process, or the HTTP simulator when `CLARION_SIMULATOR_URL` is set). Other
providers register a factory under `(channel, setting value)` in `FACTORIES`, e.g.
`FACTORIES[("sms", "twilio")] = build_twilio`; a factory raises `ProviderConfigError` when
its settings are incomplete, and a provider with no factory is reported the same way.
"""

from collections.abc import Callable

from clarion.config import Settings
from clarion.providers.base import Provider, ProviderConfigError
from clarion.providers.real import build_real_provider
from clarion.providers.simulator import SimulatorProvider
from clarion.providers.simulator_http import HttpSimulatorProvider

CHANNELS = ("sms", "whatsapp", "rcs")

Factory = Callable[[Settings, str], Provider]
"""(settings, channel) -> a provider for that channel (not started)."""


def build_simulator(settings: Settings, channel: str) -> Provider:
    if settings.simulator_url:
        return HttpSimulatorProvider(
            channel,
            settings.simulator_url,
            timeout=settings.simulator_timeout,
            callback_url=settings.public_url.rstrip("/") + "/webhooks/simulator",
        )
    return SimulatorProvider(channel, receipt_delay=settings.simulator_receipt_delay)


def build_real(settings: Settings, channel: str) -> Provider:
    """Twilio, SMPP, WhatsApp Cloud API, Google RBM (see `clarion.providers.real`)."""
    provider = build_real_provider(settings, channel)
    if provider is None:  # pragma: no cover - FACTORIES only routes real names here
        raise ProviderConfigError(f"no real provider selected for {channel}")
    return provider


FACTORIES: dict[tuple[str, str], Factory] = {
    ("sms", "simulator"): build_simulator,
    ("whatsapp", "simulator"): build_simulator,
    ("rcs", "simulator"): build_simulator,
    ("sms", "twilio"): build_real,
    ("sms", "smpp"): build_real,
    ("whatsapp", "cloud"): build_real,
    ("rcs", "rbm"): build_real,
}


def selected(settings: Settings) -> dict[str, str]:
    """The provider name chosen for each channel."""
    return {
        "sms": settings.sms_provider,
        "whatsapp": settings.whatsapp_provider,
        "rcs": settings.rcs_provider,
    }


def build_providers(settings: Settings) -> dict[str, Provider]:
    """channel -> provider, as the settings choose. Raises ProviderConfigError (with every
    problem found, not just the first) when a chosen provider is unavailable or misconfigured."""
    providers: dict[str, Provider] = {}
    problems: list[ProviderConfigError] = []
    for channel, name in selected(settings).items():
        factory = FACTORIES.get((channel, name))
        if factory is None:
            problems.append(
                ProviderConfigError(f"the {name!r} provider is not available for {channel}")
            )
            continue
        try:
            providers[channel] = factory(settings, channel)
        except ProviderConfigError as exc:
            problems.append(exc)
    if problems:
        if len(problems) == 1:
            raise problems[0]
        raise ProviderConfigError(
            "; ".join(p.message for p in problems), [m for p in problems for m in p.missing]
        )
    return providers
