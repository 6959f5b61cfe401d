"""The one exception tree of Relais.

Every error says whether retrying the same operation later may succeed
(``retriable``) and carries a stable ``code`` that reaches logs, rejection
events and dead-letter headers. Partner errors are translated into this tree at
the connector boundary; nothing above a connector catches httpx or zeep errors.

    RelaisError                      retriable?
    ├── ConfigurationError           no   bad settings, missing reference files
    ├── DecodeError                  no   a record cannot be read
    │   ├── KeyDecodeError           no
    │   ├── ValueDecodeError         no   bad magic byte, truncated Avro
    │   └── UnknownSchemaError       no   fingerprint or schema id not known here
    ├── ValidationError              no   content breaks a rule; holds field reasons
    ├── MemberError                  no
    │   └── UnknownMemberError       no
    ├── BlobError                    no
    │   ├── BlobNotFoundError        no
    │   ├── BlobIntegrityError       no   digest or size does not match
    │   └── BlobNotOwnedError        no   a member asked for a blob it does not own
    ├── PartnerError                 (by subclass)
    │   ├── PartnerTransientError    yes  timeout, connection, 5xx, 429, partner busy
    │   │   └── PartnerTimeoutError  yes
    │   └── PartnerPermanentError    no   4xx, SOAP client fault, schema rejection
    │       ├── PartnerRefusedError  no   the partner read the request and said no (S²LOW
    │       │                             ``KO`` line, SOAP ``codeRetour`` KO): its own words
    │       │                             reach the member as a rejection
    │       ├── PartnerAuthError     no   credentials or TLS client certificate refused
    │       └── PartnerReplyError    no   the partner answered something unreadable
    │           └── PartnerReplyTooLargeError  no  the answer exceeded the endpoint's cap
    └── InfrastructureError          yes  broker or store unavailable
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reason:
    """Why a field was refused: the field's path, a stable code and a sentence."""

    field: str
    code: str
    message: str


class RelaisError(Exception):
    """Root of every error Relais raises on purpose."""

    retriable: bool = False
    code: str = "relais_error"

    def __init__(self, message: str, *, reasons: list[Reason] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reasons: list[Reason] = list(reasons or [])


class ConfigurationError(RelaisError):
    code = "configuration"


class DecodeError(RelaisError):
    code = "decode"


class KeyDecodeError(DecodeError):
    code = "key_decode"


class ValueDecodeError(DecodeError):
    code = "value_decode"


class UnknownSchemaError(DecodeError):
    code = "unknown_schema"


class ValidationError(RelaisError):
    code = "validation"


class MemberError(RelaisError):
    code = "member"


class UnknownMemberError(MemberError):
    code = "unknown_member"


class BlobError(RelaisError):
    code = "blob"


class BlobNotFoundError(BlobError):
    code = "blob_not_found"


class BlobIntegrityError(BlobError):
    code = "blob_integrity"


class BlobNotOwnedError(BlobError):
    code = "blob_not_owned"


class PartnerError(RelaisError):
    """A partner refused or failed a call. ``partner`` names it (``tdt``, ``iparapheur``…)."""

    code = "partner"

    def __init__(
        self,
        message: str,
        *,
        partner: str,
        status: int | None = None,
        retry_after: float | None = None,
        reasons: list[Reason] | None = None,
    ) -> None:
        super().__init__(message, reasons=reasons)
        self.partner = partner
        self.status = status
        self.retry_after = retry_after


class PartnerTransientError(PartnerError):
    retriable = True
    code = "partner_transient"


class PartnerTimeoutError(PartnerTransientError):
    code = "partner_timeout"


class PartnerPermanentError(PartnerError):
    code = "partner_permanent"


class PartnerRefusedError(PartnerPermanentError):
    """The partner understood the request and refused it (a business refusal).

    Stages turn it into a *rejected* flow whose message is the partner's own text;
    they never look at HTTP statuses to decide that (S²LOW refuses with HTTP 200).
    """

    code = "partner_refused"


class PartnerAuthError(PartnerPermanentError):
    """The partner refused the member's credentials or TLS client certificate."""

    code = "partner_auth"


class PartnerReplyError(PartnerPermanentError):
    code = "partner_reply"


class PartnerReplyTooLargeError(PartnerReplyError):
    """A partner's answer went past the size cap of its endpoint; it was not read whole."""

    code = "partner_reply_too_large"


class InfrastructureError(RelaisError):
    retriable = True
    code = "infrastructure"
