"""ISO-8601 durations, as SageMaker's CacheConfig writes ExpireAfter (``P30D``, ``PT12H``):
what ``--cache-expire`` takes, and what an exported definition says."""

from __future__ import annotations

import re

from .errors import DefinitionError

_DURATION = re.compile(r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?"
                       r"(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")


def duration_seconds(text: str, step: str) -> float:
    """ISO-8601 durations as in SageMaker's CacheConfig (``P30D``, ``PT12H``, ``P1Y2M``)."""
    match = _DURATION.match(text or "")
    if not match or text in ("P", "PT") or text.endswith("T"):
        raise DefinitionError(
            f"Step `{step}`: --cache-expire {text!r} is not an ISO-8601 duration. Write e.g. P30D "
            "(30 days), PT12H (12 hours) or P1Y (one year)."
        )
    y, mo, w, d, h, mi, s = (float(g) if g else 0.0 for g in match.groups())
    return ((((y * 365 + mo * 30 + w * 7 + d) * 24 + h) * 60 + mi) * 60) + s


def iso_duration(seconds: float) -> str:
    """Seconds as an ISO-8601 duration in days, hours, minutes and seconds (``P30D``,
    ``PT12H``, ``P1DT0.5S``): what an exported CacheConfig's ExpireAfter says."""
    days, rest = divmod(round(float(seconds), 6), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = "P" + (f"{int(days)}D" if days else "")
    clock = (f"{int(hours)}H" if hours else "") + (f"{int(minutes)}M" if minutes else "")
    secs = round(secs, 6)
    if secs:
        clock += f"{secs:.6f}".rstrip("0").rstrip(".") + "S"
    return text + ("T" + clock if clock else "") if (days or clock) else "PT0S"
