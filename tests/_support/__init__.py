"""Helpers of the tests, and nothing else: imported by the test files, never by flashdrop."""
