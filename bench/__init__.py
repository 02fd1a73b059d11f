"""Benchmark harness: our chat server against Node's socket.io and plain python-socketio."""
