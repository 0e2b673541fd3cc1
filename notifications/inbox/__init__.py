"""The inbox: a user's notifications, the unread count, read marks."""
