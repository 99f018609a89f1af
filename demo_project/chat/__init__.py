"""The demo chat room: broadcast messages, who is online, who is typing."""
