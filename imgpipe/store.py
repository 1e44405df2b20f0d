"""Object storage with the bucket's layout: a local directory or an S3 bucket.

Everything the pipeline reads or writes outside Spark goes through a :class:`Store`, so the
local runner, the Lambda and the report step share one code path. Writes are atomic: a local
write goes to a temporary file that is renamed into place; an S3 PUT is atomic by nature.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

# The error codes S3 answers a missing key with (GET: NoSuchKey; HEAD: 404/NotFound).
_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})


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

    def list_keys(self, prefix: str) -> Iterator[str]:
        """Every key under ``prefix``, in sorted order."""
        ...

    def list_versions(self, prefix: str) -> Iterator[tuple[str, str]]:
        """Every key under ``prefix`` with a tag that changes whenever its content does."""
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
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
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
            yield key, hashlib.blake2b(self.path(key).read_bytes(), digest_size=16).hexdigest()


class S3Store:
    """An S3 bucket. The client is injected (or created lazily) so moto can start first."""

    def __init__(self, bucket: str, client: Any | None = None) -> None:
        self.bucket = bucket
        self._client = client

    @property
    def client(self) -> Any:
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
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                return None
            raise
        return bytes(response["Body"].read())

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        extra = {"ContentType": content_type} if content_type else {}
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data, **extra)

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                return False
            raise
        return True

    def list_keys(self, prefix: str) -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        keys: list[str] = []
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            keys.extend(obj["Key"] for obj in page.get("Contents", ()))
        return iter(sorted(keys))

    def list_versions(self, prefix: str) -> Iterator[tuple[str, str]]:
        """Keys with their ETag, from the listing alone (one request per 1,000 keys)."""
        paginator = self.client.get_paginator("list_objects_v2")
        versions: list[tuple[str, str]] = []
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            versions.extend((obj["Key"], obj["ETag"]) for obj in page.get("Contents", ()))
        return iter(sorted(versions))


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
