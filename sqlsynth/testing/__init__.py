"""Test helpers shipped with sqlsynth (a local OpenAI-compatible stub server)."""
