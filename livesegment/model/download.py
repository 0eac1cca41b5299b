"""Fetching model weights: resumable, and verified before the file gets its final name.

A download is written to ``NAME.h5.part``; an interrupted one resumes from there with an HTTP
``Range`` request. Only a file of the exact size whose layers all match the architecture is
renamed into place (atomically), and its model card is written beside it. So a model found in
the models folder under its final name was complete and verified when it arrived.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import shutil
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path
from types import MappingProxyType
from urllib.parse import urlsplit

from tqdm import tqdm

from livesegment import __version__
from livesegment.errors import ModelError, UsageError
from livesegment.model.cards import COCO_CLASS_NAMES, ModelSpec, read_card, sha256_of, write_card
from livesegment.paths import same_file

log = logging.getLogger(__name__)

TIMEOUT_S = 30.0
CHUNK_BYTES = 1 << 20
PART_SUFFIX = ".part"
USER_AGENT = f"livesegment/{__version__} (Python urllib)"


@dataclass(frozen=True, slots=True)
class Downloadable:
    """A model ``livesegment models download NAME`` can fetch.

    Attributes:
        spec: what the file must hold; ``spec.weights`` is the file name to save it under.
        urls: mirrors tried in order; HTTPS only.
        size_bytes: exact size of the file.
        sha256: expected digest when it is known; the card records the digest either way.
    """

    spec: ModelSpec
    urls: tuple[str, ...]
    size_bytes: int
    sha256: str | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def filename(self) -> str:
        return self.spec.weights.name


COCO = Downloadable(
    spec=ModelSpec(
        name="coco",
        weights=Path("mask_rcnn_coco.h5"),
        backbone="resnet101",
        class_names=COCO_CLASS_NAMES,
        input_size=1024,
        # PixelLib's own default confidence for its COCO model.
        default_threshold=0.7,
    ),
    urls=(
        "https://github.com/ayoolaolafenwa/PixelLib/releases/download/1.2/mask_rcnn_coco.h5",
        "https://github.com/matterport/Mask_RCNN/releases/download/v2.0/mask_rcnn_coco.h5",
    ),
    size_bytes=257_557_808,
)

DOWNLOADS: Mapping[str, Downloadable] = MappingProxyType({COCO.name: COCO})


@dataclass(frozen=True, slots=True)
class Downloaded:
    """Outcome of ``download``.

    Attributes:
        weights: final path of the verified weights file.
        card: the model card written beside it.
        url: where the bytes came from (None when the file was already in place).
        resumed_from: bytes already on disk from an earlier attempt that this one continued.
        layers: weighted layers checked against the architecture.
    """

    weights: Path
    card: Path
    url: str | None
    resumed_from: int
    layers: int


class _MirrorFailed(Exception):
    """This URL gave nothing usable; the next mirror may do better."""


class _NoDowngradeRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects (GitHub sends release assets to a CDN) but never from HTTPS to HTTP."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if urlsplit(req.full_url).scheme == "https" and urlsplit(newurl).scheme != "https":
            raise urllib.error.URLError(f"refused a redirect from HTTPS to insecure {newurl}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def find(name: str) -> Downloadable:
    """The registry entry for ``name``.

    Raises:
        UsageError: unknown name, listing the known ones.
    """
    try:
        return DOWNLOADS[name]
    except KeyError:
        raise UsageError(
            f"no downloadable model {name!r}; available: {', '.join(sorted(DOWNLOADS))}"
        ) from None


def part_path(final: Path) -> Path:
    return final.with_name(final.name + PART_SUFFIX)


def check_urls(urls: tuple[str, ...], *, explicit: bool) -> None:
    """HTTPS only, except an ``http://`` URL the user typed themselves.

    Raises:
        UsageError: another scheme, or a built-in mirror that is not HTTPS.
    """
    for url in urls:
        scheme = urlsplit(url).scheme
        if scheme == "https" or (explicit and scheme == "http"):
            continue
        if explicit:
            raise UsageError(
                "only https:// (or an explicit http://) URLs can be downloaded",
                parameter="urls",
                value=url,
            )
        raise UsageError(
            f"built-in mirror {url} is not HTTPS; refusing it (give the URL of a mirror yourself)"
        )


def download(
    entry: Downloadable,
    folder: Path,
    *,
    urls: tuple[str, ...] | None = None,
    progress: bool = False,
    timeout_s: float = TIMEOUT_S,
    force: bool = False,
) -> Downloaded:
    """Fetch ``entry`` into ``folder``, verify it, rename it into place and write its card.

    Args:
        urls: mirrors chosen by the user (``--url``), tried instead of ``entry.urls``; these
            may be plain HTTP.
        progress: show a progress bar on stderr.
        timeout_s: limit for connecting and for each read.
        force: download again even if a verified copy is already there.

    Raises:
        UsageError: a URL with a scheme that is not allowed, or a card of another model where
            this one's card goes.
        ModelError: every mirror failed, the body was cut short (re-running resumes), or the
            file failed verification (it is removed); nothing is left at the final path.
    """
    explicit = urls is not None
    urls = urls if urls is not None else entry.urls
    check_urls(urls, explicit=explicit)
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ModelError(
            f"cannot create the models folder {folder} ({error.strerror}); set "
            "LIVESEGMENT_HOME to a writable folder"
        ) from error
    final = folder / entry.filename
    card = folder / f"{entry.name}.json"
    _check_card_is_ours(entry, final, card)
    if not force and final.exists() and card.exists() and _already_verified(entry, final, card):
        return Downloaded(final, card, None, 0, 0)
    part = part_path(final)
    _check_free_space(folder, entry.size_bytes - _size_or_zero(part))
    failures = []
    for url in urls:
        try:
            resumed_from = _fetch(url, part, entry, progress=progress, timeout_s=timeout_s)
        except _MirrorFailed as failure:
            log.info("mirror failed: %s", failure)
            failures.append(str(failure))
            continue
        digest = sha256_of(part)
        if entry.sha256 is not None and digest != entry.sha256:
            part.unlink()
            raise ModelError(
                f"{entry.name} from {url} failed verification and was removed: "
                f"sha256 {digest[:16]}… is not the expected "
                f"{entry.sha256[:16]}…; try again, or give another mirror's URL",
                parameter="urls",
            )
        layers = _verify_part(entry, part, url)
        os.replace(part, final)
        _write_card_atomically(
            dataclasses.replace(entry.spec, weights=final, sha256=digest), card, source=url
        )
        return Downloaded(final, card, url, resumed_from, layers)
    raise ModelError(
        f"could not download {entry.name}: {'; '.join(failures)}; give the URL of a working mirror",
        parameter="urls",
    )


def _check_card_is_ours(entry: Downloadable, final: Path, card: Path) -> None:
    """A card already at ``card`` that describes other weights is a model the user registered
    under this name: writing ours would lose it.

    Raises:
        UsageError: naming the card, its weights and what to do.
    """
    if not card.exists():
        return
    try:
        named = read_card(card).get("weights", f"{card.stem}.h5")
        weights = card.parent / named if isinstance(named, str) else None
    except ModelError:
        weights = None
    if weights is not None and same_file(weights, final):
        return
    what = f"is the card of {weights}" if weights is not None else "is not a readable card"
    raise UsageError(
        f"models download {entry.name} would overwrite {card}, which {what}; "
        "rename or move it, or set LIVESEGMENT_HOME to another folder"
    )


def _size_or_zero(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _check_free_space(folder: Path, needed_bytes: int) -> None:
    free = shutil.disk_usage(folder).free
    if needed_bytes > free:
        raise ModelError(
            f"not enough free space in {folder}: the download needs "
            f"{needed_bytes / 1e6:.1f} MB more, {free / 1e6:.1f} MB are free; free "
            "some space or set LIVESEGMENT_HOME to another disk"
        )


def _already_verified(entry: Downloadable, final: Path, card: Path) -> bool:
    from livesegment.model.verify import verify_weights

    report = verify_weights(final, card=card, full=False)
    if not report.ok:
        log.warning("replacing %s: %s", final, report.problem)
    return report.ok and final.stat().st_size == entry.size_bytes


def _open(url: str, offset: int, timeout_s: float):
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    opener = urllib.request.build_opener(_NoDowngradeRedirects)
    try:
        return opener.open(urllib.request.Request(url, headers=headers), timeout=timeout_s)
    except urllib.error.HTTPError as error:
        error.close()
        if error.code == 416 and offset:
            return None
        raise _MirrorFailed(f"{url} returned HTTP {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError, HTTPException) as error:
        reason = getattr(error, "reason", None) or error
        raise _MirrorFailed(f"{url} could not be reached ({reason})") from None


_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


def _fetch(url: str, part: Path, entry: Downloadable, *, progress: bool, timeout_s: float) -> int:
    """Bring ``part`` to ``entry.size_bytes`` bytes from ``url``; returns the resumed offset."""
    size = entry.size_bytes
    offset = _size_or_zero(part)
    if offset > size:
        part.unlink()
        offset = 0
    if offset == size:
        return offset
    response = _open(url, offset, timeout_s)
    if response is None:
        # 416: the server says our partial file is not a prefix it can continue.
        log.info("%s refused to resume at byte %d; starting over", url, offset)
        part.unlink()
        offset = 0
        response = _open(url, 0, timeout_s)
    with response:
        status = response.status
        if status == 206:
            match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
            if match is None or int(match[1]) != offset:
                raise _MirrorFailed(
                    f"{url} answered the resume request with an unusable "
                    f"Content-Range {response.headers.get('Content-Range')!r}"
                )
            total = match[3]
            if total != "*" and int(total) != size:
                raise _MirrorFailed(_wrong_size(url, int(total), entry))
        elif status == 200:
            if offset:
                # The server ignored Range and sends the whole file: start over.
                log.info("%s ignored the Range request; downloading from the start", url)
                offset = 0
            length = response.headers.get("Content-Length")
            if length is not None and int(length) != size:
                raise _MirrorFailed(_wrong_size(url, int(length), entry))
        else:
            raise _MirrorFailed(f"{url} returned HTTP {status} {response.reason}")
        received = _copy_body(response, part, offset, entry, url, progress=progress)
    if received < size:
        raise ModelError(
            f"download of {entry.name} from {url} stopped: got {received:,} of "
            f"{size:,} bytes; run the same command again to resume"
        )
    return offset


def _wrong_size(url: str, offered: int, entry: Downloadable) -> str:
    return (
        f"{url} offers {offered:,} bytes but {entry.filename} is {entry.size_bytes:,} bytes "
        "(not this model's file)"
    )


def _copy_body(
    response, part: Path, offset: int, entry: Downloadable, url: str, *, progress: bool
) -> int:
    """Append the body to ``part``; returns how many bytes ``part`` holds afterwards."""
    size = entry.size_bytes
    received = offset
    bar = tqdm(
        total=size,
        initial=offset,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=entry.filename,
        disable=not progress,
        leave=False,
        dynamic_ncols=True,
    )
    with part.open("ab" if offset else "wb") as out, bar:
        while received < size:
            try:
                chunk = response.read(min(CHUNK_BYTES, size - received))
            except (OSError, HTTPException) as error:
                # A stalled or reset connection: keep what arrived so a re-run resumes.
                log.info("connection to %s lost after %d bytes: %s", url, received, error)
                break
            if not chunk:
                break
            out.write(chunk)
            received += len(chunk)
            bar.update(len(chunk))
    return received


def _verify_part(entry: Downloadable, part: Path, url: str) -> int:
    """Size, backbone, classes and every layer against the architecture; else remove it."""
    from livesegment.model.cards import read_weights_file
    from livesegment.model.verify import check_architecture

    spec = entry.spec
    try:
        actual = part.stat().st_size
        if actual != entry.size_bytes:
            raise ModelError(f"it is {actual:,} bytes, expected {entry.size_bytes:,}")
        weights = read_weights_file(part)
        if weights.backbone != spec.backbone or weights.num_classes != spec.num_classes:
            raise ModelError(
                f"it holds a {weights.backbone or 'unknown'} backbone with "
                f"{weights.num_classes or 'no'} classes, expected {spec.backbone} "
                f"with {spec.num_classes}"
            )
        return check_architecture(dataclasses.replace(spec, weights=part), weights)
    except ModelError as error:
        part.unlink(missing_ok=True)
        raise ModelError(
            f"{entry.name} from {url} failed verification and was removed "
            f"({error}); try again, or give another mirror's URL",
            parameter="urls",
        ) from error


def _write_card_atomically(spec: ModelSpec, card: Path, **extra) -> None:
    temporary = card.with_name(card.name + ".tmp")
    write_card(spec, temporary, **extra)
    os.replace(temporary, card)


def partial_downloads(folder: Path) -> list[tuple[Downloadable | None, Path]]:
    """Unfinished downloads in ``folder``, with the registry entry they belong to if known."""
    if not Path(folder).is_dir():
        return []
    by_file = {entry.filename: entry for entry in DOWNLOADS.values()}
    return [
        (by_file.get(part.name[: -len(PART_SUFFIX)]), part)
        for part in sorted(Path(folder).glob(f"*{PART_SUFFIX}"))
    ]
