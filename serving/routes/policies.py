"""The policies a campaign may use."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fastapi import APIRouter

from serving.routes.deps import OWNER_ERRORS, OwnerId, SettingsDep, errors

router = APIRouter(tags=["policies"])


@router.get("/policies", responses=errors(*OWNER_ERRORS))
def policies(_: OwnerId, settings: SettingsDep) -> dict[str, Any]:
    """Built-in policies, trained ones saved in the data folder, and registered models."""
    from policies import POLICY_NAMES

    folder = settings.data_dir / "policies"
    saved = sorted(f"saved:{p.parent.name}" for p in folder.glob("*/policy.json")) if folder.is_dir() else []
    registered: list[dict[str, Any]] = []
    # Only an existing store is read: listing must not create an MLflow database.
    if os.environ.get("MLFLOW_TRACKING_URI") or Path("mlruns/mlflow.db").is_file():
        try:
            from serving.registry import list_registered

            registered = list_registered()
        except Exception as err:
            registered = [{"error": f"registry unavailable: {type(err).__name__}"}]
    return {"builtin": list(POLICY_NAMES), "saved": saved, "registered": registered}
