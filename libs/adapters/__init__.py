"""Input adapters: X12 837, FHIR R4, CMS DE-SynPUF and canonical JSON -> canonical claims or rejections.

Every adapter is a streaming reader yielding `Claim | Rejection`; `read_claims` picks the adapter per file by content.
Errors about whole inputs (cannot be opened, format not recognised) raise `AdapterError` subclasses.
"""

from libs.adapters.canonical import JsonRejectionReason, read_canonical
from libs.adapters.errors import AdapterError, InputUnreadableError, UnrecognizedInputError
from libs.adapters.fhir import FhirRejectionReason, read_fhir
from libs.adapters.registry import InputFormat, detect_format, read_claims, sniff_format
from libs.adapters.synpuf import SynpufRejectionReason, load_beneficiaries, read_synpuf
from libs.adapters.x12 import read_x12

__all__ = [
    "AdapterError",
    "FhirRejectionReason",
    "InputFormat",
    "InputUnreadableError",
    "JsonRejectionReason",
    "SynpufRejectionReason",
    "UnrecognizedInputError",
    "detect_format",
    "load_beneficiaries",
    "read_canonical",
    "read_claims",
    "read_fhir",
    "read_synpuf",
    "read_x12",
    "sniff_format",
]
