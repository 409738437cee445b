"""Orchestration: the ingest pipeline (plan → shard tasks on Ray or in-process → summary), with resume."""
