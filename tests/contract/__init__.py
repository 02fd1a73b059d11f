"""One server, real clients: Socket.IO clients, raw frames and HTTP, as users see it."""
