"""The ways in: Socket.IO event handlers, the REST API and the operator endpoints."""
