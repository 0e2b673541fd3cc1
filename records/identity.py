"""Who a record or a certificate is about, as the MCA rules name them: one owner for the identity
fields the record, the certificates, their public check and the hand-over export all print.

- The **ID type** is the resident identity card (居民身份证): registration accepts no other document.
- The **volunteer number** (志愿者编号) is the volunteer's number in this system: the city's area
  code, a dash, and the volunteer id in eight digits. It never changes, is unique across a province
  (area codes are unique) and needs no column of its own.
- The **ID number** is shown masked (first 4 and last 4 digits) unless the caller chooses the full
  number where the rules allow it (an issuer on a certificate; the hand-over to the national system).
- A **masked name** keeps the first character and, for names of three or more characters, the last:
  张三 → 张*, 张三丰 → 张*丰 (what a public verifier may see).
"""

from __future__ import annotations

from core import crypto
from core.extensions import db
from grids.models import Area
from grids.paths import city_id
from volunteers.models import Volunteer

ID_TYPE = "居民身份证"
ID_TYPE_EN = "Resident identity card"


def volunteer_number(volunteer: Volunteer) -> str:
    """``<city area code>-<volunteer id, 8 digits>``, e.g. ``150200-00000042``."""
    city = db.session.get(Area, city_id(volunteer.home_grid.path))
    code = city.code if city is not None else "0"
    return f"{code}-{volunteer.id:08d}"


def id_number(volunteer: Volunteer, *, full: bool = False) -> str:
    """The national ID number, masked unless ``full``."""
    number = crypto.decrypt(volunteer.national_id_encrypted)
    return number if full else crypto.mask(number, 4, 4)


def masked_name(name: str) -> str:
    """The first character, then ``*``, then the last character for names of three or more."""
    name = name.strip()
    if len(name) <= 1:
        return "*"
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]
