"""Where a campaign sends: its policy and its channel (simulated, a file folder, or a webhook),
built from what the owner asked for; a webhook's secret is a reference to the server's
configuration and never part of a snapshot."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import logging
import socket
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import urlsplit

from agent import Campaign
from agent.channels import Channel, FileChannel, SimulatedChannel, WebhookChannel
from serving.errors import InvalidError
from serving.models import CampaignRow
from serving.schemas import ChannelConfig, check_policy_name
from serving.settings import SECRET_ENV_PREFIX
from serving.store import Store, load_snapshot

logger = logging.getLogger(__name__)

CHANNEL_FAILED = (
    "the channel did not take the batch (no connection, timeout or an error answer); "
    "the campaign is paused and resume redelivers it"
)
"""What an owner is told of a failed delivery: never the connection error itself, which would
let a campaign probe the network the server sees."""


def generic_channel_errors(camp: Campaign, n_audit: int, n_alerts: int) -> None:
    """Replace the text of the channel failures recorded since ``n_audit``/``n_alerts``."""
    camp.audit_log[n_audit:] = [
        dataclasses.replace(a, reason=CHANNEL_FAILED) if a.action == "channel_failed" else a
        for a in camp.audit_log[n_audit:]
    ]
    camp.alerts[n_alerts:] = [
        dataclasses.replace(a, message=CHANNEL_FAILED) if a.kind == "channel_failed" else a
        for a in camp.alerts[n_alerts:]
    ]


class ChannelsMixin(Store):
    """Policies and channels of stored campaigns."""

    def _policy(self, name: str, sim: Any, seed: int) -> Any:
        """The policy a request names (already syntax-checked by the schema): a built-in, a saved
        folder inside the server's policies folder, or a registered model; nothing else is loaded.

        Raises:
            UnknownPolicyError: no such policy, or a name that would leave the policies folder.
        """
        from serving.registry import resolve_policy

        policies_dir = self.settings.data_dir / "policies"
        return resolve_policy(check_policy_name(name), sim, seed=seed, policies_dir=policies_dir)

    def check_webhook_url(self, url: str) -> None:
        """Refuse a webhook URL the configuration does not allow: its scheme, its host (when an
        allow-list is set), and any address it resolves to that is not public (unless allowed).

        Raises:
            InvalidError: the URL is not allowed (the message says what, never why a connection failed).
        """
        cfg = self.settings
        field: list[str | int] = ["channel", "url"]
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme not in cfg.webhook_schemes:
            raise InvalidError(f"webhook url scheme must be one of {list(cfg.webhook_schemes)}", field)
        if not host or parts.username or parts.password:
            raise InvalidError("webhook url needs a host and no credentials", field)
        if cfg.webhook_hosts and host not in cfg.webhook_hosts:
            raise InvalidError("webhook host is not in the server's allow-list", field)
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
            infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
        except (OSError, ValueError, UnicodeError):
            raise InvalidError("webhook host cannot be resolved", field) from None
        if not cfg.webhook_allow_private:
            for info in infos:
                if not ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_global:
                    raise InvalidError("webhook host must resolve to public addresses only", field)

    def _webhook_secret(self, ref: str) -> str:
        secret = self.settings.webhook_secrets.get(ref)
        if not secret:
            raise InvalidError(
                f"no webhook secret {ref!r} is configured on the server ({SECRET_ENV_PREFIX}{ref})",
                ["channel", "secret_ref"],
            )
        return secret

    def _channel(self, cfg: ChannelConfig, sim: Any, campaign_id: int) -> Channel:
        if cfg.type == "webhook":
            assert cfg.url and cfg.secret_ref  # checked by the schema
            self.check_webhook_url(cfg.url)
            return WebhookChannel(cfg.url, self._webhook_secret(cfg.secret_ref), sim.arms)
        if cfg.type == "file":
            folder = self.settings.data_dir / "exports" / f"campaign-{campaign_id}"
            return FileChannel(folder, sim.arms, fmt=cfg.format)
        return SimulatedChannel(sim)

    def _attach_secret(self, camp: Campaign, r: CampaignRow) -> None:
        """Give a loaded webhook channel its secret (snapshots never hold it) after checking its
        URL again (a host may resolve elsewhere by now)."""
        if isinstance(camp.channel, WebhookChannel):
            try:
                cfg = ChannelConfig.model_validate(json.loads(r.request_json)["channel"])
            except ValueError:  # created before secrets were references: it needs recreating
                raise InvalidError("the webhook channel has no secret_ref", ["channel"]) from None
            assert cfg.url and cfg.secret_ref
            self.check_webhook_url(cfg.url)
            camp.channel.secret = self._webhook_secret(cfg.secret_ref)

    def _channel_factory(self, r: CampaignRow) -> Callable[[Any], Channel]:
        """Builds a stored campaign's channel from the ChannelConfig it was created with; a
        webhook channel gets its secret from its reference later (``_attach_secret``)."""
        try:
            cfg = json.loads(r.request_json).get("channel") or {}
        except (TypeError, ValueError):
            cfg = {}
        kind = cfg.get("type") if isinstance(cfg, dict) else None
        if kind == "webhook":
            # A stand-in secret: the runner attaches the real one (``_attach_secret``) before any
            # delivery and pauses the campaign when it cannot; other loads never deliver.
            return lambda sim: WebhookChannel(str(cfg.get("url") or ""), "unresolved", sim.arms)
        if kind == "file":
            folder = self.settings.data_dir / "exports" / f"campaign-{r.id}"
            fmt: Literal["jsonl", "csv"] = "csv" if cfg.get("format") == "csv" else "jsonl"
            return lambda sim: FileChannel(folder, sim.arms, fmt=fmt)
        return lambda sim: SimulatedChannel(sim)

    def _load_row(self, blob: bytes, r: CampaignRow) -> Campaign:
        return load_snapshot(blob, self._channel_factory(r))
