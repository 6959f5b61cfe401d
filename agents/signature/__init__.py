"""The signature step in front of a delivery: a member's i-Parapheur signs an acte or a PES
before it leaves (issue 10).

What exists here is the stage's core, independent of topics and records: the member's
settings (:mod:`agents.signature.settings`), the ``CreerDossier`` a flow sends
(:mod:`agents.signature.requests`), what a ``GetHistoDossier`` answer means for the flow
(:mod:`agents.signature.decisions`) and the order that keeps a signature safe
(:mod:`agents.signature.collect`: fetch, store, journal, then archive). Wiring it as a
stage of the acts and Hélios flows (topics, schemas, states) is described in
``docs/sandbox-iparapheur.md`` § "The signature stage".
"""
