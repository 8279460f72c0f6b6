#!/usr/bin/env python3
"""Rank feed posts for one person, as a feed service would with the context engine.

1. Send the candidate posts (id, text, optional category and business) to
   ``RankItems`` under the ``FEED_RANKING`` purpose: the engine scores each
   from the person's activity *permitted for the feed* and returns every post,
   best first, with the events that made the top ones relevant.
2. Blend the engine's score with the feed's own signal (here: freshness of the
   post) and print the final order with the evidence behind each top post.

Posts come from a JSON lines file (``--posts``: one ``{"item_id", "text",
"category"?, "source_id"?, "age_hours"?}`` per line) or, without it, 50
built-in sample posts. ``--json`` prints one JSON object for machines. Set up
with ``examples/python/setup.sh`` and run with
``examples/python/.venv/bin/python examples/python/feed_rank.py --help``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent / "gen"))

try:
    import grpc
    from context_engine.v1 import context_engine_pb2 as pb
    from context_engine.v1 import context_engine_pb2_grpc as pb_grpc
except ImportError as missing:
    sys.exit(f"error: {missing}. Run examples/python/setup.sh and use examples/python/.venv/bin/python.")

TOPICS = [
    ("Hiking", "Five day hikes with waterproof boots in the Alps"),
    ("Hiking", "Trekking poles: when they help and when they do not"),
    ("Travel", "Vienna in winter: coffee houses, museums and markets"),
    ("Travel", "Packing list for a city break with carry-on only"),
    ("Gaming", "Galaxy Raiders season 4 patch notes"),
    ("Gaming", "Co-op strategy games for two players"),
    ("Cooking", "Sourdough starter from scratch in seven days"),
    ("Cooking", "Weeknight pasta with what is in the fridge"),
    ("Finance", "How index funds work, in plain words"),
    ("Music", "Beginner electric guitar buying guide"),
]


def sample_posts() -> list[dict[str, Any]]:
    """50 posts: five variants of ten topics, of varying age."""
    posts = []
    for i in range(50):
        category, text = TOPICS[i % len(TOPICS)]
        posts.append(
            {"item_id": f"post-{i:02d}", "text": f"{text} (part {i // len(TOPICS) + 1})", "category": category,
             "age_hours": (i * 7) % 72}
        )
    return posts


def load_posts(path: str | None) -> list[dict[str, Any]]:
    if path is None:
        return sample_posts()
    posts = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                post = json.loads(line)
                if not isinstance(post, dict) or "item_id" not in post or "text" not in post:
                    sys.exit(f"error: {path}:{n}: expected an object with item_id and text")
                posts.append(post)
    return posts


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--server",
        default=os.environ.get("CONTEXT_ENGINE_SERVER", "127.0.0.1:50051"),
        help="host:port of the engine (env CONTEXT_ENGINE_SERVER; default %(default)s)",
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get("CONTEXT_ENGINE_API_KEY"),
        help="orchestrator API key (env CONTEXT_ENGINE_API_KEY); not needed in local development mode",
    )
    parser.add_argument("--user", required=True, help="pseudonymous user id")
    parser.add_argument("--posts", help="JSON lines file of candidate posts (default: 50 samples)")
    parser.add_argument("--top", type=int, default=10, help="posts to print with their evidence")
    parser.add_argument(
        "--freshness-weight", type=float, default=0.2, help="weight of post freshness against the engine's score"
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="RankItems deadline in seconds")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    return parser.parse_args(argv)


def rank_items(args: argparse.Namespace, posts: list[dict[str, Any]]) -> pb.RankItemsResponse:
    """Asks the engine to score the posts; raises grpc.RpcError (INVALID_ARGUMENT names the field)."""
    metadata = [("authorization", f"Bearer {args.api_key}")] if args.api_key else []
    request = pb.RankItemsRequest(
        user_id=args.user,
        purpose=pb.FEED_RANKING,
        items=[
            pb.CandidateItem(
                item_id=p["item_id"], text=p["text"], category=p.get("category", ""), source_id=p.get("source_id", "")
            )
            for p in posts
        ],
        evidence_items=args.top,
    )
    with grpc.insecure_channel(args.server.removeprefix("http://")) as channel:
        stub = pb_grpc.ContextEngineStub(channel)
        response: pb.RankItemsResponse = stub.RankItems(request, metadata=metadata, timeout=args.timeout)
        return response


def blend(response: pb.RankItemsResponse, posts: list[dict[str, Any]], weight: float) -> list[dict[str, Any]]:
    """Final feed order: (1 - w) * engine score + w * freshness (1 for a new post, 0 after three days)."""
    by_id = {p["item_id"]: p for p in posts}
    feed = []
    for item in response.items:
        age = float(by_id[item.item_id].get("age_hours", 0))
        freshness = max(0.0, 1.0 - age / 72.0)
        feed.append(
            {
                "item_id": item.item_id,
                "text": by_id[item.item_id]["text"],
                "engine_rank": item.rank,
                "engine_score": round(item.score, 4),
                "final_score": round((1 - weight) * item.score + weight * freshness, 4),
                "evidence": [
                    {
                        "text": e.text,
                        "source_id": e.provenance.source_id,
                        "event_id": e.provenance.event_id,
                        "similarity": round(e.similarity, 4),
                    }
                    for e in item.evidence
                ],
            }
        )
    feed.sort(key=lambda f: (-f["final_score"], f["engine_rank"]))
    return feed


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    posts = load_posts(args.posts)
    try:
        response = rank_items(args, posts)
    except grpc.RpcError as e:
        print(f"error: RankItems failed: {e.code().name}: {e.details()}", file=sys.stderr)
        return 1
    feed = blend(response, posts, args.freshness_weight)
    stats = response.stats
    if args.json:
        print(json.dumps({"feed": feed, "events_considered": stats.events_considered,
                          "items_embedded": stats.items_embedded, "items_cached": stats.items_cached,
                          "engine_total_us": stats.total_us}))
        return 0
    print(f"{len(feed)} posts ranked for {args.user} from {stats.events_considered} permitted events "
          f"({stats.total_us / 1000:.1f} ms in the engine)")
    for n, post in enumerate(feed[: args.top], 1):
        print(f"{n:2d}. {post['final_score']:.3f}  {post['text']}")
        for e in post["evidence"]:
            print(f"      because: {e['text']}  [{e['source_id']}/{e['event_id']}, sim {e['similarity']:.2f}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
