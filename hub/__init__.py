"""The top of the hub: the composition root (:mod:`hub.app`), the list of flows the hub
runs (:mod:`hub.flows`) and the ``relais`` command line (:mod:`hub.cli`).

Nothing below imports this package; it is the only place that knows every layer.
"""
