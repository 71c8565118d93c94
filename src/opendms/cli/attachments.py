"""``opendms upload``: a file stored as an attachment, for tickets to name."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from opendms.cli.common import AsUser, CliError, print_json, shared_options
from opendms.files import service as files
from opendms.files.storage import FileStore


@shared_options
def upload(
    file: Annotated[Path, typer.Argument(help="The file to attach.")],
    source: Annotated[
        str, typer.Option(help="datacorrect, order_info_attachment, big-file, sqlreview.")
    ] = "datacorrect",
    *,
    who: AsUser,
) -> None:
    """Store a file as an attachment; prints its AttachmentKey for tickets."""
    if source not in files.FILE_SOURCES:
        raise CliError(f"--source must be one of {', '.join(files.FILE_SOURCES)}")

    def chunks() -> Iterator[bytes]:
        with file.open("rb") as fh:
            while block := fh.read(1 << 20):
                yield block

    with who.acting() as (rt, s, caller):
        try:
            attachment = files.save_attachment(
                s,
                FileStore(rt.settings.files),
                caller,
                file.name,
                source,
                chunks(),
                files.UploadLimits(
                    rt.settings.upload_max_bytes, rt.settings.upload_timeout_seconds
                ),
            )
        except OSError as exc:
            raise CliError(f"cannot read {file}: {exc.strerror or exc}") from exc
        print_json(
            {
                "AttachmentKey": attachment.attachment_key,
                "Size": attachment.size_bytes,
                "Sha256": attachment.sha256,
            }
        )
