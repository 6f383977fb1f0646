"""Distances on the earth, for "the store nearest to me" (WeChat reports WGS-84 degrees)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, select

from marketing.listings import DayHours, hours_on, store_day
from marketing.models import Store, StoreHoursException
from wx_service.ground.extensions import db

EARTH_RADIUS_KM = 6371.0088  # the mean radius (IUGG)


def haversine_km(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance in km between two points given in degrees."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    d_phi, d_lambda = phi2 - phi1, math.radians(lng2 - lng1)
    a = math.sin(d_phi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(d_lambda / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def valid_point(lat: float, lng: float) -> bool:
    return math.isfinite(lat) and math.isfinite(lng) and -90 <= lat <= 90 and -180 <= lng <= 180


@dataclass(frozen=True)
class Nearest:
    store: Store
    km: float
    hours: DayHours  # today's


def nearest_store(lat: float, lng: float, now: datetime | None = None) -> Nearest | None:
    """The active store with coordinates nearest to (lat, lng), its distance in km and its hours
    today; None when no store has coordinates. One query (today's exceptions joined): a group has
    a handful of stores, compared in Python."""
    if not valid_point(lat, lng):
        return None
    day = store_day(now)
    rows = db.session.execute(
        select(Store, StoreHoursException).outerjoin(
            StoreHoursException, and_(StoreHoursException.store_id == Store.id, StoreHoursException.day == day))
        .where(Store.active.is_(True), Store.latitude.is_not(None), Store.longitude.is_not(None))
        .order_by(Store.id))
    ranked = [(haversine_km(lat, lng, store.latitude, store.longitude), store.id, store, exception)
              for store, exception in rows]
    if not ranked:
        return None
    km, _, store, exception = min(ranked, key=lambda item: item[:2])
    return Nearest(store, km, hours_on(store, day, exception))
