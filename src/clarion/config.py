"""Settings, read from the environment with the CLARION_ prefix."""

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLARION_", extra="ignore")

    database_url: str = "sqlite:///./clarion.db"
    admin_token: str | None = None
    redis_url: str | None = None
    public_url: str = "http://127.0.0.1:8000"
    # The built web console served at / (default: the one packaged in clarion/console_dist).
    console_dir: Path | None = None
    max_body_bytes: int = 10 * 1024 * 1024
    # CSV uploads (POST /lists/{id}/imports) are streamed to disk, so they may be larger.
    max_import_bytes: int = 2 * 1024 * 1024 * 1024
    # `clarion serve`'s HTTP guards (clarion.httpserver): seconds a connection has to send a
    # request's headers, open connections, header bytes; the listen backlog; seconds an idle
    # kept-alive connection stays open.
    http_header_timeout: float = Field(default=10.0, gt=0)
    http_max_connections: int = Field(default=1000, ge=1)
    http_max_header_bytes: int = Field(default=64 * 1024, ge=1024)
    http_backlog: int = Field(default=1024, ge=1)
    http_keep_alive: int = Field(default=5, ge=1)
    # Processes that parse CSV imports next to the server (0: parse in the server process).
    import_workers: int = Field(default=1, ge=0, le=16)

    # Live events (GET /events): how often a process reads the change markers while a
    # stream is open, and the keep-alive comment's period.
    events_poll_seconds: float = Field(default=0.25, gt=0, le=5)
    events_keepalive_seconds: float = Field(default=15.0, gt=0)

    # Operations (docs/integration.md): GET /metrics and the workers' metrics port answer
    # only `Authorization: Bearer <metrics_token>` (404 while unset).
    metrics_token: str | None = None
    # The most queued-and-due messages one scrape counts (clarion_queue_depth saturates there).
    metrics_queue_cap: int = Field(default=10_000, ge=1, le=1_000_000)
    log_format: Literal["text", "json"] = "text"
    # Message rows, raw receipts, tracked links and clicks (the per-message rows,
    # operations/retention.py) of campaigns finished longer ago than this are deleted (None:
    # kept for ever).
    retention_days: float | None = Field(default=None, gt=0)
    retention_batch: int = Field(default=5_000, ge=100, le=100_000)
    retention_interval: float = Field(default=60.0, gt=0)  # seconds between retention rounds

    # Engine
    sender_enabled: bool = True
    worker_batch_size: int = Field(default=500, ge=1, le=10_000)
    worker_concurrency: int = Field(default=64, ge=1, le=2_000)
    lease_seconds: int = Field(default=60, ge=5)
    scheduler_interval: float = Field(default=0.5, gt=0)
    # How long an engine loop with nothing to do waits for a wake-up before it looks anyway:
    # wake-ups (NOTIFY on PostgreSQL, in-process on SQLite) bring work at once; this is the
    # safety net for a missed one.
    engine_idle_seconds: float = Field(default=2.0, gt=0)
    # Seconds an accepted message may wait for its final receipt before it turns `expired`
    # (72 h: what providers keep trying for; a receipt that comes later still applies).
    receipt_timeout: float = Field(default=259_200, gt=0)
    worker_max_attempts: int = Field(default=6, ge=1, le=100)  # transient failures, then failed
    retry_base_seconds: float = Field(default=1.0, gt=0)  # backoff: base * 2**attempt, jittered
    retry_max_seconds: float = Field(default=300.0, gt=0)
    materialize_chunk: int = Field(default=50_000, ge=100)

    # Providers
    sms_provider: Literal["simulator", "twilio", "smpp"] = "simulator"
    whatsapp_provider: Literal["simulator", "cloud"] = "simulator"
    rcs_provider: Literal["simulator", "rbm"] = "simulator"
    simulator_receipt_delay: float = Field(default=1.0, ge=0)
    simulator_url: str | None = (
        None  # an HTTP simulator (`clarion simulator`) instead of in-process
    )
    simulator_timeout: float = Field(default=10.0, gt=0)  # per request to the HTTP simulator
    # Shared with `clarion simulator`: it signs receipt webhooks (HMAC-SHA256 of the body in
    # X-Simulator-Signature) and /webhooks/simulator rejects unsigned ones when this is set.
    simulator_secret: str | None = None

    whatsapp_api_url: str = "https://graph.facebook.com/v21.0"
    whatsapp_token: str | None = None
    whatsapp_phone_number_id: str | None = None
    whatsapp_business_account_id: str | None = None
    whatsapp_app_secret: str | None = None
    whatsapp_verify_token: str | None = None

    twilio_api_url: str = "https://api.twilio.com"
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_from: str | None = None
    twilio_messaging_service_sid: str | None = None

    smpp_host: str | None = None
    smpp_port: int = 2775
    smpp_system_id: str | None = None
    smpp_password: str | None = None
    smpp_source_addr: str | None = None
    smpp_source_ton: int = 5
    smpp_source_npi: int = 0
    smpp_throughput: float = Field(default=100.0, gt=0)
    smpp_concat: Literal["udh", "sar", "payload"] = "udh"
    smpp_window: int = Field(default=100, ge=1)
    # How this SMSC writes receipt ids relative to submit_sm_resp ids, for receipts that
    # arrive after a restart (live ones are matched in any spelling): "hex-to-dec" when it
    # answers ids in hex and receipts them in decimal, "dec-to-hex" for the reverse.
    smpp_receipt_id: Literal["same", "hex-to-dec", "dec-to-hex"] = "same"
    # How long a later part of a long message may keep being refused (throttled, or a
    # transient error) once its first part was accepted, before the message fails with
    # `throttled_too_long`. Kept well under the lease: the part is retried within one submit.
    smpp_part_retry_seconds: float = Field(default=20.0, gt=0)
    # How long a message refused whole (its first part) with throttles may keep coming back
    # before it fails with `throttled_too_long` (counted from the first throttle this
    # process saw for it).
    smpp_throttle_give_up_seconds: float = Field(default=900.0, gt=0)

    rbm_api_url: str = "https://rcsbusinessmessaging.googleapis.com"
    rbm_agent_id: str | None = None
    rbm_service_account_file: str | None = None
    rbm_client_token: str | None = None

    # Event hooks (the customer's webhooks). Hosts (names or IP addresses, comma-separated)
    # that a hook may reach over plain http://, and that may be internal addresses (loopback,
    # private): by default a hook must be https:// to a public address.
    hooks_allow_http_hosts: Annotated[list[str], NoDecode] = []
    hooks_batch_size: int = Field(default=500, ge=1, le=500)  # events per POST
    hooks_timeout: float = Field(default=10.0, gt=0)  # seconds a receiver has to answer
    hooks_lease_seconds: float = Field(default=30.0, ge=1)  # a killed worker's hooks come back
    hooks_concurrency: int = Field(default=16, ge=1, le=1000)  # hooks delivered at once

    @field_validator("hooks_allow_http_hosts", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [h.strip().lower() for h in value.split(",") if h.strip()]
        return value

    # Tracked links (trackLinks): the short links' base, `{link_base_url}/{code}` (default:
    # CLARION_PUBLIC_URL + "/l", where `clarion serve` answers GET /l/{code}); and the
    # secret that salts the hash of a clicking visitor's IP address (unset: a random secret
    # per process, so hashes are comparable only within one process's life).
    link_base_url: str | None = Field(default=None, pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$")
    link_secret: str | None = None

    @property
    def link_base(self) -> str:
        """Where short links point, without a trailing slash."""
        return (self.link_base_url or self.public_url.rstrip("/") + "/l").rstrip("/")


@lru_cache
def get_settings() -> Settings:
    return Settings()
