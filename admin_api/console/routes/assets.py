"""The console's bundled scripts and styles (built at setup from the npm lock file)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Path
from fastapi.responses import FileResponse

from common.config import get_settings

router = APIRouter(prefix="/assets")
TYPES = {"console.js": "text/javascript", "charts.js": "text/javascript",
         "simulator.js": "text/javascript",
         "console.css": "text/css"}


@router.get("/{name}")
def asset(name: str = Path(..., max_length=40)) -> FileResponse:
    if name not in TYPES:
        raise HTTPException(404, f"no console asset {name}")
    path = get_settings().console_assets_dir / name
    if not path.is_file():
        raise HTTPException(404, f"the console is not built ({path} is missing): run `make "
                                 "setup`, which bundles it with Node.js and npm")
    return FileResponse(path, media_type=TYPES[name], headers={"Cache-Control": "no-cache"})
