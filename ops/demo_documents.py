"""Documents for the demo and the tests; see :mod:`relais.documents`."""

from __future__ import annotations

from relais.documents import sample_pdf as minimal_pdf

__all__ = ["minimal_pdf"]
