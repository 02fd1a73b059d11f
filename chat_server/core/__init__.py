"""The chat's rules and what they need, with no web, Socket.IO or Redis library in sight."""
