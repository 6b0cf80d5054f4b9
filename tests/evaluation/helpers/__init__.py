"""Test doubles of the evaluation package: a scripted chat backend and a loopback OpenAI-compatible server."""
