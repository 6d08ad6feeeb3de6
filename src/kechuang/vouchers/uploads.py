"""Delivery evidence (交付报告 / 发票): the file's type is read from its first
bytes, never from its name or the browser's Content-Type."""

from __future__ import annotations

from typing import Any

from kechuang.errors import KechuangError

#: The largest report or invoice accepted (a technical limit, not a policy figure).
MAX_BYTES = 10 * 1024 * 1024

#: Leading bytes → file type. OFD (China's e-invoice format) is a ZIP container.
SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "pdf"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpg"),
    (b"PK\x03\x04", "ofd"),
)


def sniff(head: bytes) -> str | None:
    """The type of a file from its first bytes.

    >>> sniff(b"%PDF-1.7 ...")
    'pdf'
    >>> sniff(b"MZ\\x90\\x00") is None
    True
    """
    for magic, kind in SIGNATURES:
        if head.startswith(magic):
            return kind
    return None


def check_delivery_file(upload: Any) -> str:
    """The upload's type ('pdf', 'ofd', 'png', 'jpg'), or a refusal naming the problem."""
    if upload is None:
        raise KechuangError("请上传交付报告或发票 / upload the report or invoice", "file")
    size = getattr(upload, "size", None)
    if not size:
        raise KechuangError("文件为空 / the file is empty", "file")
    if size > MAX_BYTES:
        raise KechuangError(
            f"文件超过 {MAX_BYTES // (1024 * 1024)} MB / the file is larger than {MAX_BYTES // (1024 * 1024)} MB",
            "file",
        )
    upload.seek(0)
    head = upload.read(16)
    upload.seek(0)
    kind = sniff(head)
    if kind is None:
        raise KechuangError(
            "文件须为 PDF、OFD、PNG 或 JPEG / the file must be a PDF, OFD, PNG or JPEG", "file"
        )
    if kind == "ofd" and not str(getattr(upload, "name", "")).lower().endswith(".ofd"):
        # Any ZIP (a .docx, an archive of anything) starts the same way.
        raise KechuangError(
            "压缩文件只接受 OFD 电子发票 / of ZIP files only OFD invoices are accepted", "file"
        )
    return kind
