"""Security that is pure logic or sans-I/O: who the client is (SASL's PLAIN and SCRAM, TLS contexts,
principals, development certificates: ``sasl``, ``scram``, ``tls``, ``principal``, ``certs``) and what it
may do (the ACL model and the authorization decision: ``acl``, ``authorizer``).

No asyncio: the broker's connections and logq's client drive the mechanisms, the coordinator stores
credentials and ACL bindings, the broker asks the authorizer. Imports only the core modules of ``logq``
(``cryptography`` only in ``certs``), so the broker, the coordinator and the client may all
use it. See docs/security.md.
"""
