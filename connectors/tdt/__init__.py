"""Connector to a tiers de télétransmission (TdT) speaking the S²LOW HTTP API."""

from connectors.tdt.client import build_tdt_client
from connectors.tdt.models import (
    ActeForm,
    FileLike,
    PostResult,
    PrefectureDocumentRef,
    ReplyForm,
    StatusResult,
    TransactionRef,
    TransactionStatus,
    UploadFile,
)
from connectors.tdt.s2low import S2lowConnector

__all__ = [
    "ActeForm",
    "FileLike",
    "PostResult",
    "PrefectureDocumentRef",
    "ReplyForm",
    "S2lowConnector",
    "StatusResult",
    "TransactionRef",
    "TransactionStatus",
    "UploadFile",
    "build_tdt_client",
]
