"""Object storage with the bucket's layout: a local directory or an S3 bucket.

Everything the pipeline reads or writes outside Spark goes through a :class:`Store`, so the
local runner, the Lambda and the report step share one code path. Writes are atomic: a local
write goes to a temporary file that is renamed into place; an S3 PUT is atomic by nature.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlparse

if TYPE_CHECKING:  # the stubs are a dev dependency: the Lambda and EMR runtimes lack them
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import (
        GetObjectRequestTypeDef,
        ObjectTypeDef,
        PutObjectRequestTypeDef,
    )

# The error codes S3 answers a missing key with (GET: NoSuchKey; HEAD: 404/NotFound).
_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})
# What a local read of a missing key raises: no file, a file where a folder should be, a folder.
_LOCAL_MISSING = (FileNotFoundError, NotADirectoryError, IsADirectoryError)


def is_missing(exc: BaseException) -> bool:
    """Whether a store's read failed because there is no object at the key.

    Locally that is an ``OSError`` such as ``FileNotFoundError``; on S3 a 404 error code. S3
    answers 404 only to a caller with ``s3:ListBucket``, and 403 otherwise: that stays an
    error, since a missing permission must not read as a missing object.
    """
    if isinstance(exc, _LOCAL_MISSING):
        return True
    from botocore.exceptions import ClientError

    return isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") in _MISSING


class ObjectChanged(Exception):
    """A conditional read found another version of the object than the tag it was given."""


@dataclass(frozen=True)
class ObjectHead:
    """What storage says about one object without reading its content.

    Attributes:
        key: The object's key.
        size: Its length in bytes.
        etag: A tag that changes whenever the content does (S3's ETag; locally the digest
            :meth:`Store.list_versions` gives); pass it to ``get_range(if_match=...)``.
        metadata: User metadata (S3's ``x-amz-meta-*``, names lower-case); local files
            have none.
        checksum: A full-object checksum kept by the store (``"crc64nvme:<base64>"``), or
            ``None`` when there is none: then only hashing the bytes identifies the content.
    """

    key: str
    size: int
    etag: str
    metadata: Mapping[str, str] = field(default_factory=dict)
    checksum: str | None = None


def _check_range(start: int, end: int) -> None:
    # S3 ignores a malformed Range header and returns the whole object: refuse one here.
    if not 0 <= start < end:
        raise ValueError(f"bad byte range {start}..{end}: need 0 <= start < end")


def _content_tag(fh: io.BufferedReader) -> str:
    """A digest of an open file's content: the local store's version tag."""
    return hashlib.file_digest(fh, lambda: hashlib.blake2b(digest_size=16)).hexdigest()


def _umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux's /proc)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    # Elsewhere reading it means setting it: for an instant, to the strictest mask, so a file
    # another thread creates meanwhile is never more open than intended.
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


class Store(Protocol):
    """What the pipeline needs from object storage. Keys use ``/`` and never start with it."""

    def uri(self, key: str = "") -> str:
        """A URI for ``key`` that Spark can read (``file:///...`` or ``s3://...``)."""
        ...

    def get_bytes(self, key: str) -> bytes: ...

    def get_bytes_or_none(self, key: str) -> bytes | None:
        """The bytes at ``key``, or ``None`` when there is no such key (one read, no probe)."""
        ...

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None: ...

    def exists(self, key: str) -> bool: ...

    def head(self, key: str) -> ObjectHead | None:
        """Size, version tag, user metadata and stored checksum of ``key``; ``None`` if absent."""
        ...

    def get_range(self, key: str, start: int, end: int, if_match: str | None = None) -> bytes:
        """Bytes ``start`` up to ``end`` (exclusive; fewer at the end of the object).

        Raises:
            ObjectChanged: ``if_match`` is not the object's current tag (:attr:`ObjectHead.etag`).
            ValueError: The range is empty or negative.
        """
        ...

    def list_keys(self, prefix: str) -> Iterator[str]:
        """Every key under ``prefix``, in sorted order."""
        ...

    def list_versions(self, prefix: str) -> Iterator[tuple[str, str]]:
        """Every key under ``prefix`` with a tag that changes whenever its content does."""
        ...

    def list_sizes(self, prefix: str) -> Iterator[tuple[str, int]]:
        """Every key under ``prefix`` with its size in bytes (from the listing: nothing read)."""
        ...


class LocalStore:
    """A directory laid out like the bucket."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()

    def path(self, key: str) -> Path:
        if key.startswith("/") or ".." in key.split("/"):
            raise ValueError(f"unsafe key {key!r}")
        return self.root / key

    def uri(self, key: str = "") -> str:
        return (self.root / key).as_uri() if key else self.root.as_uri()

    def get_bytes(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def get_bytes_or_none(self, key: str) -> bytes | None:
        try:
            return self.path(key).read_bytes()
        except _LOCAL_MISSING:
            return None

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                # mkstemp creates the file 0600; give it the mode any other new file gets,
                # so a report copied to a web folder or read by a teammate opens.
                os.fchmod(fh.fileno(), 0o666 & ~_umask())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def head(self, key: str) -> ObjectHead | None:
        """Size and content digest (the file is read to hash it: there is no stored checksum)."""
        try:
            with self.path(key).open("rb") as fh:
                return ObjectHead(key, os.fstat(fh.fileno()).st_size, _content_tag(fh))
        except _LOCAL_MISSING:
            return None

    def get_range(self, key: str, start: int, end: int, if_match: str | None = None) -> bytes:
        _check_range(start, end)
        # Writes replace the file, never change it in place: the one open file is one
        # version, so the tag checked and the bytes read belong together.
        with self.path(key).open("rb") as fh:
            if if_match is not None and _content_tag(fh) != if_match:
                raise ObjectChanged(f"{key!r} changed: its tag is no longer {if_match}")
            fh.seek(start)
            return fh.read(end - start)

    def list_keys(self, prefix: str) -> Iterator[str]:
        base = self.path(prefix.rstrip("/")) if prefix else self.root
        if not base.is_dir():
            return iter(())
        keys = (
            p.relative_to(self.root).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not p.name.startswith(".tmp-")
        )
        return iter(sorted(keys))

    def list_versions(self, prefix: str) -> Iterator[tuple[str, str]]:
        """Keys with a digest of their content (records are small: reading them is cheap)."""
        for key in self.list_keys(prefix):
            with self.path(key).open("rb") as fh:
                yield key, _content_tag(fh)

    def list_sizes(self, prefix: str) -> Iterator[tuple[str, int]]:
        for key in self.list_keys(prefix):
            yield key, self.path(key).stat().st_size


class S3Store:
    """An S3 bucket. The client is injected (or created lazily) so moto can start first."""

    def __init__(self, bucket: str, client: S3Client | None = None) -> None:
        self.bucket = bucket
        self._client = client

    @property
    def client(self) -> S3Client:
        if self._client is None:
            from imgpipe.aws_clients import s3_client

            self._client = s3_client()
        return self._client

    def uri(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{key}"

    def get_bytes(self, key: str) -> bytes:
        return bytes(self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def get_bytes_or_none(self, key: str) -> bytes | None:
        """One GET; a missing key (404, which needs ``s3:ListBucket``, not 403) is ``None``."""
        from botocore.exceptions import ClientError

        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if is_missing(exc):
                return None
            raise
        return bytes(response["Body"].read())

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        request: PutObjectRequestTypeDef = {"Bucket": self.bucket, "Key": key, "Body": data}
        if content_type:
            request["ContentType"] = content_type
        self.client.put_object(**request)

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if is_missing(exc):
                return False
            raise
        return True

    def head(self, key: str) -> ObjectHead | None:
        """One HEAD, asking for checksums (of a KMS-encrypted object that needs kms:Decrypt).

        S3 gives objects uploaded without a checksum a full-object CRC64NVME; a composite
        (per-part) checksum is no content identity, since copies differ by their parts.
        """
        from botocore.exceptions import ClientError

        try:
            response = self.client.head_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED")
        except ClientError as exc:
            if is_missing(exc):
                return None
            raise
        crc = response.get("ChecksumCRC64NVME")
        full_object = response.get("ChecksumType", "FULL_OBJECT") == "FULL_OBJECT"
        return ObjectHead(
            key=key,
            size=int(response["ContentLength"]),
            etag=response["ETag"],
            metadata=dict(response.get("Metadata", {})),
            checksum=f"crc64nvme:{crc}" if crc and full_object else None,
        )

    def get_range(self, key: str, start: int, end: int, if_match: str | None = None) -> bytes:
        """One ranged GET, conditional on the ETag (``If-Match``) when ``if_match`` is given."""
        from botocore.exceptions import ClientError

        _check_range(start, end)
        request: GetObjectRequestTypeDef = {
            "Bucket": self.bucket,
            "Key": key,
            "Range": f"bytes={start}-{end - 1}",
        }
        if if_match is not None:
            request["IfMatch"] = if_match
        try:
            response = self.client.get_object(**request)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code == "PreconditionFailed":
                raise ObjectChanged(f"{key!r} changed: its tag is no longer {if_match}") from exc
            if code == "InvalidRange":  # starts at or past the end: nothing there to read
                return b""
            raise
        return bytes(response["Body"].read())

    def list_keys(self, prefix: str) -> Iterator[str]:
        return iter([obj["Key"] for obj in self._listing(prefix)])

    def list_versions(self, prefix: str) -> Iterator[tuple[str, str]]:
        """Keys with their ETag, from the listing alone (one request per 1,000 keys)."""
        return iter([(obj["Key"], obj["ETag"]) for obj in self._listing(prefix)])

    def list_sizes(self, prefix: str) -> Iterator[tuple[str, int]]:
        """Keys with their size, from the listing alone (one request per 1,000 keys)."""
        return iter([(obj["Key"], int(obj["Size"])) for obj in self._listing(prefix)])

    def _listing(self, prefix: str) -> list[ObjectTypeDef]:
        """Every object under ``prefix`` as ``ListObjectsV2`` describes it, sorted by key."""
        paginator = self.client.get_paginator("list_objects_v2")
        objects: list[ObjectTypeDef] = []
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            objects.extend(page.get("Contents", ()))
        return sorted(objects, key=lambda obj: obj["Key"])


def open_store(root: str) -> Store:
    """A store for ``s3://bucket``, ``file:///path`` or a plain local path."""
    parsed = urlparse(root)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ValueError(f"no bucket in {root!r}")
        if parsed.path.strip("/"):
            raise ValueError(f"the store root must be a bucket, not a prefix: {root!r}")
        return S3Store(parsed.netloc)
    if parsed.scheme == "file":
        return LocalStore(parsed.path)
    if parsed.scheme:
        raise ValueError(f"unsupported store URI scheme {parsed.scheme!r} in {root!r}")
    return LocalStore(root)
