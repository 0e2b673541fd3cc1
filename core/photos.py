"""Photos people upload (report photos, catalogue items): checked by content, re-encoded without
metadata, and stored.

A photo is accepted only if Pillow reads it as JPEG or PNG (the file name and the declared type
count for nothing), it is no larger than REPORT_PHOTO_MAX_BYTES and has no more pixels than
REPORT_PHOTO_MAX_PIXELS (decompression bombs). It is then re-encoded from its pixels alone, so EXIF
(GPS position, device, owner), XMP, ICC and text chunks are gone; the EXIF orientation is applied
first so the picture still stands the right way up. (The settings keep the names they had when
report photos were the only ones.)

Storage is the local disk under REPORT_PHOTO_DIR (the instance folder by default) or, with
REPORT_PHOTO_STORAGE=s3, an S3-compatible bucket (REPORT_PHOTO_S3_BUCKET, REPORT_PHOTO_S3_ENDPOINT_URL,
REPORT_PHOTO_S3_REGION; credentials from the standard AWS environment, never from our config).

Files are written before the request commits; :func:`track_written` remembers them on the session,
and a transaction that ends without committing deletes them, so a failed upload leaves no file.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import tempfile
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa
from flask import current_app
from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import orm

from core import i18n
from core.errors import ApiError, NotFound, ValidationFailed

log = logging.getLogger(__name__)

_FORMATS = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png")}
_JPEG_QUALITY = 88

i18n.register_titles(
    i18n.title("photo_too_large", "Photo too large"),
    i18n.title("unsupported_photo_type", "Unsupported photo type"),
    i18n.title("photo_unreadable", "Photo unreadable"),
    i18n.title("photo_not_found", "Photo not found"),
)
i18n.register_messages(
    i18n.N_("Only JPEG and PNG photos are accepted."),
    i18n.N_("The photo could not be read."),
    i18n.N_("The photo has too many pixels."),
    i18n.N_("Photo not found."),
)
i18n.register_patterns({r"^The photo is larger than (\d+) bytes\.$": i18n.N_("The photo is larger than {0} bytes.")})


@dataclass(frozen=True)
class CleanPhoto:
    data: bytes
    content_type: str
    extension: str
    width: int
    height: int

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


# --- validation and re-encoding ------------------------------------------------------------------


def read_upload(stream: Any) -> bytes:
    """The uploaded bytes, refusing more than REPORT_PHOTO_MAX_BYTES with 413 photo_too_large."""
    limit = current_app.config["REPORT_PHOTO_MAX_BYTES"]
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise ApiError(f"The photo is larger than {limit} bytes.", code="photo_too_large", status=413)
    return data


def clean_photo(data: bytes) -> CleanPhoto:
    """Check ``data`` is a JPEG or PNG image and re-encode it from its pixels alone.

    415 unsupported_photo_type when it is not JPEG or PNG; 422 photo_unreadable when it claims to
    be but cannot be decoded, or has more than REPORT_PHOTO_MAX_PIXELS pixels.
    """
    max_pixels = current_app.config["REPORT_PHOTO_MAX_PIXELS"]
    try:
        with warnings.catch_warnings():
            # Pillow warns (and tests turn warnings into errors) before refusing a huge image.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=list(_FORMATS)) as image:
                if image.format not in _FORMATS:
                    raise UnidentifiedImageError
                if image.width * image.height > max_pixels:
                    raise _unreadable("The photo has too many pixels.")
                content_type, extension = _FORMATS[image.format]
                image.load()
                upright = ImageOps.exif_transpose(image)
                pixels = _pixels_only(upright, keep_alpha=image.format == "PNG")
    except UnidentifiedImageError:
        raise ApiError(
            "Only JPEG and PNG photos are accepted.", code="unsupported_photo_type", status=415
        ) from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _unreadable("The photo could not be read.") from None
    out = io.BytesIO()
    if extension == "jpg":
        pixels.save(out, format="JPEG", quality=_JPEG_QUALITY, optimize=True)
    else:
        pixels.save(out, format="PNG", optimize=True)
    return CleanPhoto(out.getvalue(), content_type, extension, pixels.width, pixels.height)


def _unreadable(detail: str) -> ValidationFailed:
    return ValidationFailed(detail, code="photo_unreadable", errors={"file": [detail]})


def _pixels_only(image: Image.Image, *, keep_alpha: bool) -> Image.Image:
    """A new image holding nothing but the pixels: no info dict, EXIF, ICC, palette text."""
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    if image.mode == "L" or (image.mode == "LA" and not keep_alpha):
        mode = "L"
    else:
        mode = "RGBA" if keep_alpha and has_alpha else "RGB"
    converted = image.convert(mode)
    return Image.frombytes(mode, converted.size, converted.tobytes())


# --- storage -------------------------------------------------------------------------------------


class PhotoStore(Protocol):
    def put(self, key: str, data: bytes, content_type: str) -> None: ...

    def get(self, key: str) -> bytes: ...

    def delete(self, key: str) -> None: ...


class LocalPhotoStore:
    """Files under ``root``; written to a temporary name and renamed, so never seen half-written."""

    def __init__(self, root: str) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / key

    def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise NotFound("Photo not found.", code="photo_not_found") from None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


class S3PhotoStore:
    """An S3-compatible bucket (AWS S3, MinIO, Ceph RGW, OSS/COS in S3 mode)."""

    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self.client.put_object(
            Bucket=self.bucket, Key=self.prefix + key, Body=data, ContentType=content_type
        )

    def get(self, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)["Body"].read()
        except self.client.exceptions.NoSuchKey:
            raise NotFound("Photo not found.", code="photo_not_found") from None

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.prefix + key)


def photo_store() -> PhotoStore:
    """The store the configuration names; the S3 client is made once per app and settings."""
    config = current_app.config
    if config["REPORT_PHOTO_STORAGE"] != "s3":
        return LocalPhotoStore(config["REPORT_PHOTO_DIR"])
    settings = (
        config["REPORT_PHOTO_S3_BUCKET"],
        config["REPORT_PHOTO_S3_ENDPOINT_URL"],
        config["REPORT_PHOTO_S3_REGION"],
    )
    cache = current_app.extensions.setdefault("report_photo_s3", {})
    if settings not in cache:
        import boto3

        cache[settings] = boto3.client("s3", endpoint_url=settings[1], region_name=settings[2])
    return S3PhotoStore(cache[settings], settings[0], config["REPORT_PHOTO_S3_PREFIX"])


def new_storage_key(folder: str, owner_id: int, extension: str) -> str:
    """A fresh key for a photo of record ``owner_id`` (e.g. folder ``reports``): never reused, so a
    replaced or rolled-back file never shadows another."""
    return f"{folder}/{owner_id}/{uuid.uuid4().hex}.{extension}"


# --- no file without its row ---------------------------------------------------------------------

_WRITTEN = "report_photo_files_written"


def track_written(session: orm.Session, store: PhotoStore, key: str) -> None:
    """Delete ``key`` from ``store`` unless ``session``'s transaction commits."""
    session.info.setdefault(_WRITTEN, []).append((store, key))


@sa.event.listens_for(orm.Session, "after_commit")
def _committed(session: orm.Session) -> None:
    session.info.pop(_WRITTEN, None)


@sa.event.listens_for(orm.Session, "after_transaction_end")
def _ended(session: orm.Session, transaction: orm.SessionTransaction) -> None:
    # Savepoints end inside the request; only the end of the whole transaction decides.
    if transaction.parent is not None:
        return
    for store, key in session.info.pop(_WRITTEN, []):
        delete_quietly(store, key)


def store_photo(session: orm.Session, key: str, photo: CleanPhoto) -> None:
    """Write a cleaned photo to the configured store, deleted again unless ``session`` commits.

    A store that fails is 503 ``photo_storage_unavailable`` (retry later), never a 500.
    """
    store = photo_store()
    try:
        store.put(key, photo.data, photo.content_type)
    except Exception:
        log.warning("storing photo %s failed", key, exc_info=True)
        raise ApiError(
            "The photo could not be stored; try again.",
            code="photo_storage_unavailable",
            status=503,
            headers={"Retry-After": "5"},
        ) from None
    track_written(session, store, key)


def delete_quietly(store: PhotoStore, key: str) -> None:
    """Delete a file; a leftover is harmless, so a failure is logged, never turned into a 500."""
    try:
        store.delete(key)
    except Exception:
        log.warning("could not delete photo %s", key, exc_info=True)
