"""Bots, crawlers and spiders, told by their User-Agent (crawlerdetect's patterns)."""
from __future__ import annotations

from functools import lru_cache

from crawlerdetect import CrawlerDetect

_detector = CrawlerDetect()


@lru_cache(maxsize=4096)
def is_bot(user_agent: str) -> bool:
    """True for a crawler's User-Agent, and for none at all (browsers always send one)."""
    if not user_agent.strip():
        return True
    return bool(_detector.isCrawler(user_agent))
