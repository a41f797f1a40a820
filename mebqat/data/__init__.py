"""Datasets, offline stand-ins and few-shot episodes."""

from .episode import Episode, stack_episodes, unstack_episodes

__all__ = ["Episode", "stack_episodes", "unstack_episodes"]
