"""The delivery journal: what a flow sent to which partner, recorded so a call is made
exactly once (``deliver.py``), its compacted view (``view.py``) and the one status
poll scheduler (``polls.py``). Generic over partner families (TdT, Hélios, SEDA, i-Parapheur)."""
