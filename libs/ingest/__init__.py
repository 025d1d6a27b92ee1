"""One ingestion core: bytes, files or generated claims -> adapters -> PHI protection -> the idempotent producer.

Every path into Kafka goes through this package, so every path has the same guarantees (a PHI protector in every
environment, topics checked before sending, claims keyed by claim id, rejections to the dead-letter topic, a
`correlation_id` header per record, a ProduceReport that accounts for every record):

    produce_files(settings, paths)                    `claims produce FILE...`
    produce_bytes(settings, body, MediaType.X12)      one document
    produce_generated(settings, count, seed)          `claims produce --count N`, `make run`, the bench
    IngestService(settings).ingest(...)               the API: a long-lived producer, idempotency keys,
                                                      per-record answers

Modules: `errors` (the exception tree), `sources` (files and bodies to records), `core` (protect and produce),
`generated` (parallel generated runs), `idempotency` and `service` (the API's side).
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from libs.ingest.core import (
        check_topics_exist,
        load_protector,
        new_correlation_id,
        produce_bytes,
        produce_files,
        produce_records,
    )
    from libs.ingest.errors import (
        IngestError,
        InputTooLargeError,
        KafkaUnavailableError,
        ProtectorUnavailableError,
        UnreadableInputError,
        UnsupportedMediaTypeError,
    )
    from libs.ingest.generated import default_workers, generated_claims, produce_generated
    from libs.ingest.sources import MediaType, media_type, records_from_bytes, records_from_files

# Names resolve lazily (PEP 562): a producer worker process imports libs.ingest.workers without pulling in the
# generator and the adapters, and `claims --help` stays fast.
_HOMES = {
    **dict.fromkeys(("check_topics_exist", "load_protector", "new_correlation_id", "produce_bytes", "produce_files",
                     "produce_records"), "libs.ingest.core"),
    **dict.fromkeys(("IngestError", "InputTooLargeError", "KafkaUnavailableError", "ProtectorUnavailableError",
                     "UnreadableInputError", "UnsupportedMediaTypeError"), "libs.ingest.errors"),
    **dict.fromkeys(("default_workers", "generated_claims", "produce_generated"), "libs.ingest.generated"),
    **dict.fromkeys(("MediaType", "media_type", "records_from_bytes", "records_from_files"), "libs.ingest.sources"),
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        msg = f"module 'libs.ingest' has no attribute {name!r}"
        raise AttributeError(msg)
    return getattr(importlib.import_module(home), name)


__all__ = [
    "IngestError",
    "InputTooLargeError",
    "KafkaUnavailableError",
    "MediaType",
    "ProtectorUnavailableError",
    "UnreadableInputError",
    "UnsupportedMediaTypeError",
    "check_topics_exist",
    "default_workers",
    "generated_claims",
    "load_protector",
    "media_type",
    "new_correlation_id",
    "produce_bytes",
    "produce_files",
    "produce_generated",
    "produce_records",
    "records_from_bytes",
    "records_from_files",
]
