"""``/v1/presets``: the named presets jobs can start from."""
from __future__ import annotations

from fastapi import APIRouter

from vdp.service.responses import API_PREFIX, errors
from vdp.spec import list_presets

router = APIRouter(prefix=API_PREFIX + "/presets", tags=["presets"])


@router.get("", response_model=dict[str, str], summary="List presets", responses=errors(401))
async def presets() -> dict[str, str]:
    """Preset name -> one-line description."""
    return list_presets()
