"""Vendor push channels (issue 18) against local servers that speak each protocol."""
