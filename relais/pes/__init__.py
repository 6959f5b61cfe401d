"""Hélios PES V2: reading PES_Aller and PES_ACQUIT files and checking a PES_Aller
before it is sent (no I/O here: callers hand bytes and keep the raw file).

- :mod:`relais.pes.xml_safe`: bounded, hardened parsing (no DTD, no entities, size cap);
- :mod:`relais.pes.aller`: what a PES_Aller says (header, counts, signatures);
- :mod:`relais.pes.signature`: XML-DSig structure and Reference digests;
- :mod:`relais.pes.checks`: the checks before sending, each refusal a typed reason;
- :mod:`relais.pes.acquit`: a PES_ACQUIT read leniently, one result per ElementACQUIT.
"""
