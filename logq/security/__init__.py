"""Security that is pure logic: the ACL model and the authorization decision (``acl``, ``authorizer``).

No I/O and no asyncio: the coordinator stores ACL bindings, the broker asks the authorizer, the client
builds bindings and filters. Imports only the core files (``logq.error_codes``, ``logq.errors``).
"""
