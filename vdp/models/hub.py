"""Checkpoints hosted on the Hugging Face Hub, fetched through `huggingface_hub`.

Going through the library (instead of a plain HTTP GET) gives what a cluster needs: the shared
Hugging Face cache (``HF_HOME`` / ``HF_HUB_CACHE``; a file already there is not downloaded
again, by vdp or any other tool), resumed downloads (an interrupted file continues from its
``.incomplete`` part), mirrors (``HF_ENDPOINT``) and tokens (``HF_TOKEN`` or ``hf auth login``).
Checkpoints from elsewhere (GitHub releases) keep the plain download in `vdp.models.fetch`.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from vdp.errors import WeightsError

_HUB_URL = re.compile(r"^https://huggingface\.co/(?P<repo>[\w.-]+/[\w.-]+)/resolve/(?P<rev>[\w.-]+)/(?P<file>.+)$")


@dataclass(frozen=True)
class HubFile:
    """Where a checkpoint lives on the Hub.

    Attributes:
        repo_id: ``owner/name`` of the model repository.
        revision: Branch, tag or commit.
        filename: Path of the file in the repository.
    """

    repo_id: str
    revision: str
    filename: str


def hub_file(url: str) -> HubFile | None:
    """The Hub location of a ``https://huggingface.co/<repo>/resolve/<rev>/<file>`` URL, else None."""
    m = _HUB_URL.match(url)
    return HubFile(m["repo"], m["rev"], m["file"]) if m else None


def hub_available() -> bool:
    """Whether `huggingface_hub` is installed."""
    try:
        import huggingface_hub  # noqa: F401
    except ImportError:
        return False
    return True


def _cache_dir() -> str | None:
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    return os.path.join(os.environ["HF_HOME"], "hub") if os.environ.get("HF_HOME") else None


def download(loc: HubFile, *, timeout_s: float, name: str) -> Path:
    """Download (or find in the Hugging Face cache) `loc`; return the cached file's path.

    The endpoint is ``HF_ENDPOINT`` (default the Hub), the token ``HF_TOKEN`` or the stored login.

    Raises:
        WeightsError: The Hub or mirror cannot be reached, refuses the token, or has no such file.
    """
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    endpoint = (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")
    where = f"{endpoint}/{loc.repo_id} ({loc.filename} @ {loc.revision})"
    try:  # read the variables now: they may have changed since huggingface_hub was imported
        return Path(hf_hub_download(loc.repo_id, loc.filename, revision=loc.revision,
                                    endpoint=endpoint, cache_dir=_cache_dir(),
                                    token=os.environ.get("HF_TOKEN") or None, etag_timeout=timeout_s))
    except HfHubHTTPError as exc:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        hint = (": set HF_TOKEN to a token with access" if status in (401, 403)
                else ": no such file or revision" if status == 404 else "")
        raise WeightsError(f"download of {name} from {where} failed: HTTP {status}{hint}") from None
    except LocalEntryNotFoundError as exc:
        raise WeightsError(f"download of {name} from {where} failed: cannot reach the endpoint and "
                           f"the file is not in the Hugging Face cache ({exc})") from None
    except (OSError, ValueError) as exc:
        raise WeightsError(f"download of {name} from {where} failed: {exc}") from None
