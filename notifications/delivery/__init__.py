"""Delivery: the push providers (FCM, a recording one), the worker that sends the outbox, its task."""
