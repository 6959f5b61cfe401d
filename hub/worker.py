"""Running the hub worker: the faust worker with the ingress and every agent."""

from __future__ import annotations

import faust.worker

from hub.app import create_app
from relais.settings import Settings


def run_worker(settings: Settings) -> None:
    """Run until SIGTERM or Ctrl-C; the faust worker handles both gracefully."""
    app = create_app(settings)

    worker = faust.worker.Worker(
        app,
        loglevel=settings.log_level.lower(),
        quiet=True,
        redirect_stdouts=False,
    )
    worker.execute_from_commandline()
