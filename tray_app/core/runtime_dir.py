"""A runtime directory (sockets) that only this user controls, even without XDG_RUNTIME_DIR.

Without `XDG_RUNTIME_DIR` (a cron job, `su`, some minimal sessions) the usual fallback is
`/tmp/runtime-<uid>`, a name any local user can create first: ours would then live in a
directory someone else owns (they can swap or remove our sockets), or could not be created at
all, at every start. So a directory is only used after checking it: a real directory (not a
symlink), owned by us, writable by nobody else, its parent too. Otherwise the next candidate is
tried, ending with one under the user's cache directory, which nobody else can pre-create.
"""

from __future__ import annotations

import os
import stat
import warnings
from collections.abc import Mapping
from pathlib import Path


def _not_ours(path: Path) -> None:
    # Imported here: `clearml-tray list` asking the tray finds its socket without loading logging.
    import logging

    logging.getLogger(__name__).warning(
        "runtime directory %s is not safely ours; not using it", path
    )


def _owned_private(path: Path, *, strict: bool) -> bool:
    """`path` is a directory (not a link) of ours; `strict`: mode 0700, else no group/other
    write."""
    try:
        info = path.lstat()
    except OSError:
        return False
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        return False
    mask = 0o077 if strict else 0o022
    return not info.st_mode & mask


def make_private_dir(path: Path, *, private_parent: bool) -> bool:
    """Create (or accept) `path` as a 0700 directory of ours; False when it cannot be trusted.

    `private_parent`: the parent must be ours and 0700 too (created so when missing), as for
    `/tmp/runtime-<uid>`; otherwise it must only be ours and not writable by others.
    """
    parent = path.parent
    try:
        if private_parent and not parent.exists():
            parent.mkdir(mode=0o700)
        elif not parent.exists():
            parent.mkdir(mode=0o700, parents=True)
    except OSError:
        pass  # judged below
    if not _owned_private(parent, strict=private_parent):
        return False
    try:
        path.mkdir(mode=0o700, exist_ok=True)
    except OSError:
        return False
    if not _owned_private(path, strict=False):
        return False
    try:
        path.chmod(0o700)
    except OSError:
        return False
    return _owned_private(path, strict=True)


def private_runtime_dir(
    app: str = "clearml-tray",
    *,
    env: Mapping[str, str] | None = None,
    tmp: Path | None = None,
    cache: Path | None = None,
) -> Path:
    """`$XDG_RUNTIME_DIR/<app>`, else `/tmp/runtime-<uid>/<app>` if that is safely ours, else
    `<user cache dir>/<app>/run`. Raises OSError when none can be made private."""
    env = os.environ if env is None else env
    uid = os.getuid()
    candidates: list[tuple[Path, bool]] = []
    xdg = env.get("XDG_RUNTIME_DIR", "").strip()
    if xdg and os.path.isabs(xdg):
        candidates.append((Path(xdg) / app, False))
    else:
        if tmp is None:
            # Only here: tempfile (shutil, random) is ~2 ms that `clearml-tray list` asking the
            # tray does without when XDG_RUNTIME_DIR is set, as it is in a desktop session.
            import tempfile

            tmp = Path(tempfile.gettempdir())
        base = tmp
        candidates.append((base / f"runtime-{uid}" / app, True))
    for path, private_parent in candidates:
        if make_private_dir(path, private_parent=private_parent):
            return path
        _not_ours(path)
    if cache is None:
        # Only now: platformdirs is an import that `clearml-tray list` asking the tray avoids.
        import platformdirs

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cache = Path(platformdirs.user_cache_dir(app, appauthor=False))
    fallback = cache / "run"
    if make_private_dir(fallback, private_parent=False):
        return fallback
    _not_ours(fallback)
    raise OSError(f"no private runtime directory could be made (tried {fallback})")
