"""The loaded site: sync from files, and a per-process cache of the domain Site."""

from __future__ import annotations

import contextlib
import threading
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session

from ..db import sites_repo
from ..domain.site import Site
from ..sites import load_site, site_digest
from .errors import NotReady

_cache: dict[str, Site] = {}
_lock = threading.Lock()


def load_site_files(session: Session, path: Path, now: datetime) -> sites_repo.SyncReport:
    """Validate the site folder and sync it into the database. Raises sites.SiteInvalid (and
    changes nothing) when any file has a problem."""
    site = load_site(path)
    return sites_repo.sync_site(session, site, site_digest(path), now)


def warm_site(session: Session) -> None:
    """Read the loaded site into the cache if it is not there, in a transaction that holds no write
    lock: a claim or a due step that found it missing read 10,000 people under SQLite's write lock
    (170 ms that every posted warning and reply waited for, first in each new worker process)."""
    with contextlib.suppress(NotReady):  # nothing loaded yet: the claim will say so
        current_site(session)


def current_site(session: Session) -> Site:
    """The loaded site, read from the database once per load (keyed by the files' digest)."""
    digest = sites_repo.site_digest(session)
    if digest is None:
        raise NotReady("no site is loaded: run `jiaoying load rosters/<site>`")
    with _lock:
        site = _cache.get(digest)
    if site is None:
        site = sites_repo.read_site(session)
        if site is None:
            raise NotReady("no site is loaded: run `jiaoying load rosters/<site>`")
        with _lock:
            _cache.clear()
            _cache[digest] = site
    return site
