"""Pure in-process tests of one module each: no server, no sockets (Redis only for stores)."""
