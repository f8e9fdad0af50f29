"""The start-up check of the selected providers' settings."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from clarion.cli import app
from clarion.config import Settings, get_settings
from clarion.providers.base import ProviderConfigError
from clarion.providers.config_check import check
from clarion.providers.real import build_real_provider
from clarion.providers.registry import build_providers
from clarion.providers.smpp.provider import SmppProvider
from clarion.providers.twilio import TwilioProvider
from clarion.providers.whatsapp_cloud import WhatsAppCloudProvider


class TestCheck:
    def test_simulators_need_nothing(self) -> None:
        check(Settings())

    def test_names_every_missing_setting(self) -> None:
        settings = Settings(
            sms_provider="smpp", whatsapp_provider="cloud", smpp_host="h", whatsapp_token="t"
        )
        with pytest.raises(ProviderConfigError) as info:
            check(settings)
        message = str(info.value)
        assert message.startswith("CLARION_SMS_PROVIDER=smpp needs CLARION_SMPP_SYSTEM_ID")
        assert "CLARION_WHATSAPP_PROVIDER=cloud needs CLARION_WHATSAPP_PHONE_NUMBER_ID" in message
        assert "CLARION_SMPP_HOST" not in message and "CLARION_WHATSAPP_TOKEN," not in message
        assert "CLARION_SMPP_PASSWORD" in info.value.missing

    def test_twilio_needs_a_from_or_a_messaging_service(self) -> None:
        base = {"sms_provider": "twilio", "twilio_account_sid": "AC1", "twilio_auth_token": "t"}
        with pytest.raises(ProviderConfigError) as info:
            check(Settings(**base))
        assert info.value.missing == ["CLARION_TWILIO_FROM or CLARION_TWILIO_MESSAGING_SERVICE_SID"]
        check(Settings(**base, twilio_messaging_service_sid="MG1"))

    def test_rbm_service_account_file_must_exist(self, tmp_path: Path) -> None:
        settings = Settings(
            rcs_provider="rbm",
            rbm_agent_id="a",
            rbm_client_token="c",
            rbm_service_account_file=str(tmp_path / "missing.json"),
        )
        with pytest.raises(ProviderConfigError, match="not a readable file"):
            check(settings)

    @pytest.mark.parametrize("command", ["serve", "worker"])
    def test_serve_and_worker_stop_with_the_sentence(
        self, monkeypatch: pytest.MonkeyPatch, command: str
    ) -> None:
        monkeypatch.setenv("CLARION_RCS_PROVIDER", "rbm")
        monkeypatch.setenv("CLARION_RBM_AGENT_ID", "agent")
        get_settings.cache_clear()
        try:
            result = CliRunner().invoke(app, [command])
        finally:
            get_settings.cache_clear()
        assert result.exit_code == 2
        assert "CLARION_RCS_PROVIDER=rbm needs CLARION_RBM_SERVICE_ACCOUNT_FILE" in " ".join(
            result.output.split()
        )


class TestBuild:
    def test_builds_the_selected_provider(self) -> None:
        settings = Settings(
            sms_provider="twilio", twilio_account_sid="AC1", twilio_auth_token="t", twilio_from="+1"
        )
        assert isinstance(build_real_provider(settings, "sms"), TwilioProvider)
        assert build_real_provider(settings, "whatsapp") is None
        smpp = Settings(
            sms_provider="smpp",
            smpp_host="127.0.0.1",
            smpp_system_id="s",
            smpp_password="p",
            smpp_source_addr="X",
        )
        assert isinstance(build_real_provider(smpp, "sms"), SmppProvider)

    def test_refuses_a_misconfigured_provider(self) -> None:
        with pytest.raises(ProviderConfigError):
            build_real_provider(Settings(sms_provider="twilio"), "sms")


class TestRegistry:
    def test_build_providers_picks_the_real_ones(self, tmp_path: Path) -> None:
        settings = Settings(
            sms_provider="smpp",
            smpp_host="127.0.0.1",
            smpp_system_id="s",
            smpp_password="p",
            smpp_source_addr="X",
            whatsapp_provider="cloud",
            whatsapp_token="t",
            whatsapp_phone_number_id="1",
            whatsapp_app_secret="a",
            whatsapp_verify_token="v",
        )
        providers = build_providers(settings)
        assert isinstance(providers["sms"], SmppProvider)
        assert isinstance(providers["whatsapp"], WhatsAppCloudProvider)
        assert providers["rcs"].name == "simulator"

    def test_build_providers_reports_every_missing_setting(self) -> None:
        with pytest.raises(ProviderConfigError) as info:
            build_providers(Settings(sms_provider="twilio", rcs_provider="rbm"))
        assert "CLARION_TWILIO_ACCOUNT_SID" in info.value.missing
        assert "CLARION_RBM_AGENT_ID" in info.value.missing
