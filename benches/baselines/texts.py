"""Write the benchmark texts: {"short": [...], "long": [...], "queries": [...]}.

Deterministic for a given --seed. Short texts are activity sentences of the
kind the engine embeds on ingest (10-30 wordpiece tokens with [CLS]/[SEP]);
long texts are synthetic English paragraphs of at least 300 tokens, so they
truncate to exactly 256; queries are short chat-style questions. Token counts
are checked with the model's tokenizer.json and printed to stderr.

    python texts.py --out texts.json [--model DIR] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
from pathlib import Path

from tokenizers import Tokenizer

from common import DEFAULT_MODEL, MAX_SEQ_LEN

SHORT_COUNT, LONG_COUNT, QUERY_COUNT = 1024, 128, 200
SHORT_MIN_TOKENS, SHORT_MAX_TOKENS = 10, 30
LONG_MIN_TOKENS = 300

PRODUCTS = [
    # (category, product, brand and model)
    ("running shoes", "trail running shoes", "Northpeak Ultra 3"),
    ("running shoes", "road running shoes", "Swiftline Tempo 2"),
    ("camping", "two-person tent", "Ridgeway Dome 2"),
    ("camping", "down sleeping bag", "Alpenglow -5C"),
    ("camping", "camping stove", "Emberlite Mini"),
    ("outdoor clothing", "rain jacket", "Stormshell Pro"),
    ("outdoor clothing", "merino base layer", "Woolcore 200"),
    ("kitchen", "espresso machine", "Barista Duo"),
    ("kitchen", "cast iron skillet", "Hearthware 28 cm"),
    ("kitchen", "chef's knife", "Keenedge 20 cm"),
    ("electronics", "wireless headphones", "Quietwave 700"),
    ("electronics", "e-reader", "Pageturn Lite"),
    ("electronics", "fitness watch", "Pulsetrack 5"),
    ("electronics", "portable speaker", "Boomcube Go"),
    ("books", "hardcover novel", "The Salt Road"),
    ("books", "travel guide", "Vienna in Three Days"),
    ("books", "cookbook", "Weeknight Pasta"),
    ("groceries", "gluten-free fusilli", "GreenLeaf 500 g"),
    ("groceries", "organic coffee beans", "Highland Roast 1 kg"),
    ("groceries", "oat milk", "Oatly Barista 1 l"),
    ("toys", "building block set", "Brickton Harbour"),
    ("home", "robot vacuum", "Dustbot S8"),
    ("home", "linen bed sheets", "Sleepwell Queen"),
    ("cycling", "bike helmet", "Vento MIPS"),
    ("cycling", "bike lights", "Beamline 800"),
]
SHOPS = {  # category -> shops that sell it
    "running shoes": ["Example Outdoor", "Acme Outdoors", "MegaStore"],
    "camping": ["Example Outdoor", "Acme Outdoors"],
    "outdoor clothing": ["Example Outdoor", "Acme Outdoors", "MegaStore"],
    "kitchen": ["HomeNest", "MegaStore"],
    "electronics": ["Pixel Electronics", "MegaStore"],
    "books": ["Bookbarn", "MegaStore"],
    "groceries": ["GreenLeaf Grocer"],
    "toys": ["MegaStore"],
    "home": ["HomeNest", "MegaStore"],
    "cycling": ["Velo Depot", "Example Outdoor"],
}
ALL_SHOPS = sorted({shop for shops in SHOPS.values() for shop in shops})
GAMES = ["Starfall Tactics", "Harbor Tycoon", "Pixel Kart", "Dungeon Depths", "Word Garden", "Skyline Racer", "Chess Arena"]
PLATFORMS = ["PC", "console", "mobile", "tablet"]
SERVICES = [("StreamBox", "video streaming"), ("Tunely", "music streaming"), ("FitDaily", "workout"), ("Lingua", "language learning"),
            ("CloudVault", "cloud storage"), ("NewsDesk", "news"), ("MealKit Co", "meal kit")]
PLANS = ["basic", "standard", "premium", "family"]
CITIES = ["Berlin", "Vienna", "Lisbon", "Prague", "Copenhagen", "Milan", "Zurich", "Amsterdam", "Krakow", "Lyon"]
TRAVEL = ["RailGo", "SkyHop", "CoachLine", "FerryNorth"]
VIDEO_APPS = ["StreamBox", "Flicknest", "ViewPort"]
SHOWS = ["The Long Valley", "Kitchen Masters", "Deep Ocean", "City of Glass", "Mountain Rescue"]
CURRENCIES = ["EUR", "USD", "GBP"]


def date(rng: random.Random) -> str:
    return f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def price(rng: random.Random, low: float, high: float) -> str:
    return f"{rng.uniform(low, high):.2f}"


def short_text(rng: random.Random) -> str:
    category, product, model = rng.choice(PRODUCTS)
    shop, cur = rng.choice(SHOPS[category]), rng.choice(CURRENCIES)
    service, kind = rng.choice(SERVICES)
    kind_of = rng.randrange(11)
    if kind_of == 0:
        return f"Purchased {rng.randint(1, 3)} × {product} ({model}) for {price(rng, 5, 400)} {cur} at {shop} on {date(rng)}"
    if kind_of == 1:
        return f"Viewed {product} ({model}, {category}) at {shop} on {date(rng)}"
    if kind_of == 2:
        return f'Searched for "{rng.choice(["cheap", "waterproof", "lightweight", "best", "used"])} {product}" on {shop} on {date(rng)}'
    if kind_of == 3:
        return f"Played {rng.choice(GAMES)} for {rng.randint(5, 180)} minutes on {rng.choice(PLATFORMS)} on {date(rng)}"
    if kind_of == 4:
        return f"Signed up for a {rng.choice([7, 14, 30])}-day {service} {kind} trial on {date(rng)}"
    if kind_of == 5:
        return f"Added {product} ({model}) to cart ({category}) worth {price(rng, 5, 400)} {cur} at {shop}"
    if kind_of == 6:
        origin, dest = rng.sample(CITIES, 2)
        return f"Booked a trip from {origin} to {dest} on {date(rng)} for {price(rng, 40, 900)} {cur} with {rng.choice(TRAVEL)}"
    if kind_of == 7:
        return f"Subscribed to {service} ({rng.choice(PLANS)} plan) for {price(rng, 3, 25)} {cur} per month on {date(rng)}"
    if kind_of == 8:
        return f"Returned {product} ({model}) to {shop} for a refund of {price(rng, 5, 400)} {cur} on {date(rng)}"
    if kind_of == 9:
        return f"Rated {product} ({model}) {rng.randint(1, 5)} out of 5 stars at {shop}"
    return f"Watched {rng.randint(10, 120)} minutes of {rng.choice(SHOWS)} on {rng.choice(VIDEO_APPS)} on {date(rng)}"


# Sentence templates for the long paragraphs: diary-like notes and reviews.
LONG_SENTENCES = [
    "On a grey {weekday} morning I walked to {shop} to look at a new {product}, because the old one had finally worn out after years of use.",
    "The assistant explained that the {model} is lighter than last year's version and that most customers keep it for a long time.",
    "I compared prices online for almost an hour and found that {shop} was about {n} percent cheaper than the other shops.",
    "Later that week we took the train from {city} to {city2}, which took {n} hours and gave me plenty of time to read.",
    "The hotel near the station was small but clean, and the staff recommended a quiet restaurant two streets away.",
    "In the evening I played {game} with friends for a while, although I kept losing the final round.",
    "My sister suggested that I try the {service} trial, since she uses it every day on her way to work.",
    "After a few days the {product} already felt comfortable, and I noticed that I was using it more often than expected.",
    "The weather changed quickly in the mountains, so the rain jacket I had bought in {month} turned out to be a good decision.",
    "We cooked dinner together using a recipe from the cookbook, and it was better than anything we had ordered in weeks.",
    "I wrote a short review saying that delivery was fast, the packaging was recyclable, and the instructions were easy to follow.",
    "Before the holiday I made a list of everything we still needed, from batteries and snacks to a spare charger.",
    "The museum in {city} was crowded, but the exhibition about old maps and early travellers was worth the wait.",
    "Every {weekday} I try to go running for at least {n} kilometres, even when the streets are wet and dark.",
    "My budget for the month was tight, so I postponed buying the {product} until the seasonal sale started.",
    "The customer service team answered my question within a day and offered to replace the part free of charge.",
    "On the way back the train was delayed by {n} minutes, which meant we missed our connection and had to wait in the cold.",
    "I finally cancelled the {service} subscription because I had not opened the app once since {month}.",
    "Our neighbours lent us their camping stove, and we spent the whole weekend by the lake without any screens.",
    "In the end I was happy with the purchase, although I would have liked more colour options and a longer warranty.",
]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["January", "March", "May", "July", "September", "November"]


def long_sentence(rng: random.Random) -> str:
    _, product, model = rng.choice(PRODUCTS)
    city, city2 = rng.sample(CITIES, 2)
    return rng.choice(LONG_SENTENCES).format(
        weekday=rng.choice(WEEKDAYS), shop=rng.choice(ALL_SHOPS), product=product, model=model, n=rng.randint(2, 40),
        city=city, city2=city2, game=rng.choice(GAMES), service=rng.choice(SERVICES)[0], month=rng.choice(MONTHS),
    )


QUERY_TEMPLATES = [
    "what {category} did I buy recently?",
    "did I order any {category} last month?",
    "how much did I spend at {shop}?",
    "which games have I been playing lately?",
    "how long did I play {game} this week?",
    "have I booked a trip to {city}?",
    "when is my train to {city}?",
    "what subscriptions do I have right now?",
    "am I still on the {service} trial?",
    "what did I search for about the {product}?",
    "suggest something to go with my {product}",
    "what should I pack for my trip to {city}?",
    "did I return the {product}?",
    "what was the last thing I added to my cart?",
    "recommend a gift based on what I bought at {shop}",
    "how did I rate the {product}?",
    "what shows have I been watching?",
    "remind me which {category} brand I prefer",
]


def query(rng: random.Random) -> str:
    category, product, _ = rng.choice(PRODUCTS)
    return rng.choice(QUERY_TEMPLATES).format(
        category=category, shop=rng.choice(SHOPS[category]), game=rng.choice(GAMES), city=rng.choice(CITIES),
        service=rng.choice(SERVICES)[0], product=product,
    )


def build(tokenizer: Tokenizer, seed: int) -> dict[str, list[str]]:
    rng = random.Random(seed)

    def count(text: str) -> int:
        return len(tokenizer.encode(text).ids)  # with [CLS] and [SEP], untruncated

    short: list[str] = []
    while len(short) < SHORT_COUNT:
        text = short_text(rng)
        if SHORT_MIN_TOKENS <= count(text) <= SHORT_MAX_TOKENS:
            short.append(text)

    long_: list[str] = []
    for _ in range(LONG_COUNT):
        sentences: list[str] = []
        while count(" ".join(sentences)) < LONG_MIN_TOKENS + rng.randint(0, 80):
            sentences.append(long_sentence(rng))
        long_.append(" ".join(sentences))

    queries: list[str] = []
    seen: set[str] = set()
    while len(queries) < QUERY_COUNT:
        q = query(rng)
        if q not in seen or len(seen) >= 150:  # mostly distinct; repeats only once templates run dry
            seen.add(q)
            queries.append(q)
    return {"short": short, "long": long_, "queries": queries}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    tokenizer = Tokenizer.from_file(str(args.model / "tokenizer.json"))
    tokenizer.no_truncation()  # tokenizer.json ships truncation at 128 and padding to 128
    tokenizer.no_padding()
    texts = build(tokenizer, args.seed)
    args.out.write_text(json.dumps(texts, ensure_ascii=False, indent=1) + "\n")

    def mean_tokens(key: str) -> float:
        return statistics.fmean(len(tokenizer.encode(t).ids) for t in texts[key])

    long_min = min(len(tokenizer.encode(t).ids) for t in texts["long"])
    assert long_min >= LONG_MIN_TOKENS, long_min
    print(
        f"texts: {args.out}: {len(texts['short'])} short (mean {mean_tokens('short'):.1f} tokens), "
        f"{len(texts['long'])} long (mean {mean_tokens('long'):.1f} tokens before truncation, min {long_min}, "
        f"all truncated to {MAX_SEQ_LEN}), {len(texts['queries'])} queries (mean {mean_tokens('queries'):.1f} tokens)",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
