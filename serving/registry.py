"""The one policy-source resolver, and the MLflow model registry it reads.

:func:`resolve_policy` turns any policy a user names into a :class:`policies.Policy`, for the
API (``POST /campaigns``) and the CLI (``simulate``, ``train``, ``benchmark``):

* ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``: a registered policy (the folder is
  downloaded, then loaded with :func:`policies.load_policy`);
* ``saved:NAME``: a folder inside a policies folder (where the caller keeps one: the server's);
* any other name (``thompson``, ``epsilon_greedy:epsilon=0.1``, ``fixed:ARM``): built with
  :func:`policies.make_policy`.

``campaign-opt experiment run CONFIG --register NAME`` registers the best trial's saved policy
folder as a version of model ``NAME`` and points the alias ``champion`` at it.

The registry is the tracking store of ``MLFLOW_TRACKING_URI`` (default
``sqlite:///mlruns/mlflow.db``, the experiments' default). MLflow is imported lazily.

Example:
    >>> from simulators import Simulator, load_scenario
    >>> sim = Simulator(load_scenario("retail"), n_customers=100)
    >>> resolve_policy("random", sim, seed=0).name
    'random'
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from policies import Policy, UnknownPolicyError, load_policy, make_policy
from simulators.types import CustomerSimulator

MODELS_PREFIX = "models:/"
SAVED_PREFIX = "saved:"
DEFAULT_TRACKING_URI = "sqlite:///mlruns/mlflow.db"
_MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>\d+))$")


class RegistryError(UnknownPolicyError):
    """A registered policy that cannot be found or loaded (the message says which and why)."""


def tracking_uri(uri: str | None = None) -> str:
    """``uri``, else ``MLFLOW_TRACKING_URI``, else ``sqlite:///mlruns/mlflow.db``."""
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def _client(uri: str | None) -> Any:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from mlflow import MlflowClient

    resolved = tracking_uri(uri)
    return MlflowClient(tracking_uri=resolved, registry_uri=resolved)


def parse_model_uri(uri: str) -> tuple[str, str | None, str | None]:
    """``models:/NAME@ALIAS`` -> ``(NAME, ALIAS, None)``; ``models:/NAME/3`` -> ``(NAME, None, "3")``.

    Raises:
        RegistryError: anything else.
    """
    m = _MODEL_URI.match(uri)
    if m is None:
        raise RegistryError(
            f"{uri!r} is not a registered policy; use models:/NAME@ALIAS or models:/NAME/VERSION"
        )
    return m["name"], m["alias"], m["version"]


def download_policy(uri: str, dst: str | Path | None = None, tracking: str | None = None) -> Path:
    """Download the policy folder of a registered model version; returns the folder holding
    ``policy.json``.

    Raises:
        RegistryError: unknown model, alias or version, or a version without a policy.
    """
    from mlflow.exceptions import MlflowException

    name, alias, version = parse_model_uri(uri)
    c = _client(tracking)
    try:
        mv = c.get_model_version_by_alias(name, alias) if alias else c.get_model_version(name, str(version))
        target = Path(dst) if dst is not None else Path(tempfile.mkdtemp(prefix="policy-"))
        target.mkdir(parents=True, exist_ok=True)
        import mlflow.artifacts

        source = c.get_model_version_download_uri(name, str(mv.version))
        local = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=source,
                dst_path=str(target),
                tracking_uri=tracking_uri(tracking),
            )
        )
    except MlflowException as err:
        known = [m["name"] for m in list_registered(tracking)]
        raise RegistryError(f"cannot load {uri!r}: {err.message}; registered policies: {known}") from None
    found = sorted(local.rglob("policy.json"), key=lambda p: len(p.parts))
    if not found:
        raise RegistryError(f"{uri!r} (version {mv.version}) holds no policy.json")
    return found[0].parent


def resolve_policy(
    name: str,
    simulator: CustomerSimulator,
    seed: int | None = None,
    tracking: str | None = None,
    policies_dir: Path | None = None,
) -> Policy:
    """A policy by name, from any source (the one resolver): a registered one
    (``models:/NAME@ALIAS``, ``models:/NAME/VERSION``), a saved folder (``saved:NAME``, when
    ``policies_dir`` is given), or any name :func:`policies.make_policy` accepts.

    Args:
        name: the policy.
        simulator: the world (the oracle reads its ground truth; others only its arms).
        seed: the policy's seed. A registered policy keeps its learned state; with a seed its
            random stream is restarted from it (same seed, same decisions), without one it
            continues the stream it was saved with. A saved folder continues its stream.
        tracking: tracking/registry URI (default: ``MLFLOW_TRACKING_URI`` or the local SQLite store).
        policies_dir: the folder ``saved:NAME`` names a subfolder of; ``NAME`` must be a folder
            directly inside it (``None``: ``saved:`` is no source, the name goes to
            :func:`policies.make_policy`, which refuses it).

    Raises:
        RegistryError: a registered policy that cannot be found or loaded.
        policies.UnknownPolicyError: an unknown policy name, or a saved folder that is not
            there or would leave ``policies_dir``.
    """
    if name.startswith(MODELS_PREFIX):
        return _registered(name, simulator, seed, tracking)
    if name.startswith(SAVED_PREFIX) and policies_dir is not None:
        return load_policy(_saved_folder(name, policies_dir), simulator)
    return make_policy(name, simulator, seed=seed)


def _saved_folder(name: str, policies_dir: Path) -> Path:
    """The folder of ``saved:NAME``: directly inside ``policies_dir``, holding ``policy.json``."""
    root = policies_dir.resolve()
    folder = (root / name.removeprefix(SAVED_PREFIX)).resolve()
    if folder.parent != root or not (folder / "policy.json").is_file():
        raise UnknownPolicyError(f"no saved policy {name!r} (GET /policies lists them)")
    return folder


def _registered(name: str, simulator: CustomerSimulator, seed: int | None, tracking: str | None) -> Policy:
    """A registered policy (``models:/...``), its random stream restarted from ``seed`` if given."""
    folder = download_policy(name, tracking=tracking)
    try:
        policy = load_policy(folder, simulator)
    except (ValueError, KeyError, OSError) as err:
        raise RegistryError(f"cannot load {name!r}: {err}") from None
    if seed is not None:
        policy.seed = seed
        policy.rng = np.random.default_rng(seed)
    return policy


def list_registered(tracking: str | None = None) -> list[dict[str, Any]]:
    """Registered policies (for ``GET /policies``): name, description, aliases -> version, the
    latest version, and per version its run id, source and tags."""
    c = _client(tracking)
    out: list[dict[str, Any]] = []
    for model in c.search_registered_models():
        versions = sorted(
            c.search_model_versions(f"name = '{model.name}'"), key=lambda v: int(v.version), reverse=True
        )
        out.append(
            {
                "name": model.name,
                "description": model.description or "",
                "aliases": {str(k): str(v) for k, v in (model.aliases or {}).items()},
                "latest_version": str(versions[0].version) if versions else None,
                "uri": f"models:/{model.name}@champion"
                if "champion" in (model.aliases or {})
                else (f"models:/{model.name}/{versions[0].version}" if versions else None),
                "versions": [
                    {
                        "version": str(v.version),
                        "run_id": v.run_id,
                        "source": v.source,
                        "status": v.status,
                        "tags": dict(v.tags or {}),
                        "created": v.creation_timestamp,
                    }
                    for v in versions
                ],
            }
        )
    out.sort(key=lambda d: str(d["name"]))
    return out
