"""Checks on uploaded files, by content rather than by name."""

from __future__ import annotations

from django.core.files.uploadedfile import UploadedFile
from django.utils.translation import gettext as _
from PIL import Image, UnidentifiedImageError

from aptic.errors import ValidationFailed

LOGO_MAX_BYTES = 2 * 1024 * 1024
LOGO_FORMATS = {"PNG": "png", "JPEG": "jpg"}


def clean_logo(upload: UploadedFile) -> UploadedFile:
    """A PNG or JPEG of at most 2 MB and 4000 px a side, named after its real type."""
    if upload.size > LOGO_MAX_BYTES:
        raise ValidationFailed(_("Le logo dépasse 2 Mo."), field="logo", code="file_too_large")
    try:
        upload.seek(0)
        with Image.open(upload) as image:
            image.verify()
            kind, (width, height) = image.format, image.size
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValidationFailed(
            _("Le logo doit être une image PNG ou JPEG."), field="logo", code="invalid_image"
        ) from exc
    if kind not in LOGO_FORMATS:
        raise ValidationFailed(
            _("Le logo doit être une image PNG ou JPEG."), field="logo", code="invalid_image"
        )
    if width > 4000 or height > 4000:
        raise ValidationFailed(
            _("Le logo est trop grand (4000 pixels de côté au plus)."),
            field="logo",
            code="image_too_large",
        )
    upload.seek(0)
    upload.name = f"logo.{LOGO_FORMATS[kind]}"
    return upload
