"""Who the client is: SASL (PLAIN, SCRAM), TLS contexts, principals, development certificates.

Sans-I/O where it can be (``scram``, ``sasl``, ``principal``): the broker's connections and logq's client
drive them. Imports only the core modules of ``logq`` (``cryptography`` only in ``certs``), so the
broker, the coordinator (the credential format) and the client may all use it. See docs/security.md.
"""
