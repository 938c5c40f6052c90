"""Customers' verdicts on the answers: feedback buttons under every reply."""
