"""Class-name lists shipped in resources/ (ImageNet-1k) and name lookup."""

from __future__ import annotations

import difflib
from functools import lru_cache
from importlib import resources

from ..errors import InputError


@lru_cache(maxsize=1)
def imagenet_class_names() -> list[str]:
    """The 1000 ImageNet class names (first synonym of each WordNet entry)."""
    text = resources.files("dgp_resources").joinpath("imagenet_classes.tsv").read_text("utf-8")
    names = []
    for line in text.splitlines():
        if line.strip():
            _wnid, label = line.split("\t", 1)
            names.append(label.strip())
    return names


def short_name(label: str) -> str:
    return label.split(",")[0].strip()


def resolve_class(spec: str | int, names: list[str]) -> int:
    """A class id from an id or a (case-insensitive) name; suggests close matches."""
    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit()):
        idx = int(spec)
        if not 0 <= idx < len(names):
            raise InputError(
                f"Class id {idx} is out of range: this model has classes 0..{len(names) - 1}."
            )
        return idx
    wanted = spec.strip().lower()
    for i, label in enumerate(names):
        synonyms = [s.strip().lower() for s in label.split(",")]
        if wanted in synonyms:
            return i
    candidates = {s.strip().lower(): label for label in names for s in label.split(",")}
    close = difflib.get_close_matches(wanted, list(candidates), n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise InputError(f"Unknown class name {spec!r}.{hint}")


def choose_class(spec: str | int | None, names: list[str]) -> int | None:
    """The class a user asked for (``--class``, a batch's class setting): None for
    ``auto`` (z selection picks it), else an id or a name as :func:`resolve_class` reads
    them; a name with no close spelling is answered with the names that contain it."""
    if spec is None or str(spec).strip().lower() == "auto":
        return None
    try:
        return resolve_class(spec, names)
    except InputError as exc:
        if "Did you mean" in str(exc) or str(spec).strip().isdigit():
            raise
        # No close spelling: offer names that contain what was typed (e.g. "shark").
        wanted = str(spec).strip().lower()
        hits = [n.split(",")[0].strip() for n in names if wanted and wanted in n.lower()][:5]
        hint = (
            f" Names containing it: {', '.join(repr(h) for h in hits)}."
            if hits
            else " Give a class id or a name from the model's list (--class auto lets the "
            "model choose)."
        )
        raise InputError(f"{exc}{hint}") from None
