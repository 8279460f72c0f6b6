#!/usr/bin/env python3
"""Writes events.jsonl: a small, realistic sample of permitted activity for a
few users across shops, games, apps, travel and subscriptions, so a newcomer
can try the engine in a minute. Seeded: re-running gives the same file."""
import json
import random

rng = random.Random(20261128)
START = 1_788_000_000  # 2026-08-29
DAY = 86_400

SHOPS = {
    "acme-outdoors": ("Acme Outdoors", [
        ("Trail Runner hiking boots", "Footwear", 129.99), ("Alpine 2-person tent", "Camping", 249.0),
        ("Merino wool base layer", "Clothing", 79.5), ("Waterproof shell jacket", "Clothing", 189.0),
        ("Trekking poles", "Hiking gear", 59.9), ("Headlamp 400 lm", "Hiking gear", 34.99),
        ("Down sleeping bag -5C", "Camping", 219.0), ("Topographic map set", "Maps", 24.0)]),
    "brewhouse": ("BrewHouse", [
        ("Stainless steel French press, 1 L", "Coffee", 39.0), ("Ethiopia Yirgacheffe beans 500 g", "Coffee", 18.5),
        ("Burr grinder", "Coffee", 129.0), ("Gooseneck kettle", "Coffee", 64.0)]),
    "megastore": ("MegaStore Electronics", [
        ("65-inch OLED television", "TV", 1899.0), ("Noise-cancelling headphones", "Audio", 349.0),
        ("Mechanical keyboard", "Computers", 149.0), ("4K webcam", "Computers", 129.0),
        ("Portable power bank 20000 mAh", "Accessories", 49.0)]),
    "greenleaf": ("GreenLeaf Grocer", [
        ("Gluten-free fusilli", "Pasta", 3.49), ("Organic basil pesto", "Sauces", 5.99),
        ("Oat milk 1 L", "Dairy alternatives", 2.29), ("Sourdough loaf", "Bakery", 4.5)]),
}
GAMES = {"nova-games": ("Nova Games", ["Galaxy Raiders", "Puzzle Orbit", "Kart Legends"]),
         "pixelforge": ("PixelForge", ["Dungeon Depths", "Farm Valley"])}
APPS = {"fittrack": "FitTrack", "calmly": "Calmly Meditation", "lingua": "LinguaLeap"}
TRAVEL = {"skyways": ("SkyWays", "FlightBooked"), "staywell": ("StayWell Hotels", "HotelBooked"),
          "railgo": ("RailGo", "TripBooked")}
SUBS = {"dailybrief": ("The Daily Brief", ["Morning business newsletter", "Weekend long reads"]),
        "streamly": ("Streamly", ["Premium video plan", "Family plan"]),
        "sunrise-yoga": ("Sunrise Yoga", ["Sunrise Yoga weekly newsletter", "Beginner yoga course"])}
CITIES = ["Lisbon", "Berlin", "Reykjavik", "Kyoto", "Madrid", "Oslo", "Vienna", "Edinburgh"]
SEARCHES = ["gluten free pasta recipes", "lightweight hiking boots", "best espresso grinder", "oled vs qled",
            "family friendly hotels berlin", "beginner yoga mat", "co-op games for two", "waterproof jacket men"]

USERS = ["u_alice", "u_bob", "u_carmen", "u_dmitri", "u_eun"]

def event(user, n, source_id, source_name, name, t, action_source="website", **data):
    e = {"event_id": f"{source_id}-{user}-{n}", "user_id": user, "source_id": source_id,
         "source_name": source_name, "event_name": name, "event_time": t, "action_source": action_source}
    data = {k: v for k, v in data.items() if v not in (None, "", [], {})}
    if data:
        e["custom_data"] = data
    return e

def main():
    out = []
    for user in USERS:
        n = 0
        t = START + rng.randrange(DAY)
        for _ in range(60):
            n += 1
            t += rng.randrange(DAY // 3, 2 * DAY)
            kind = rng.choices(["shop", "game", "app", "travel", "sub", "search"], [5, 2, 1, 1, 1, 2])[0]
            if kind == "shop":
                sid = rng.choice(list(SHOPS))
                sname, items = SHOPS[sid]
                item, cat, price = rng.choice(items)
                name = rng.choices(["ViewContent", "AddToCart", "Purchase"], [5, 2, 2])[0]
                qty = rng.choice([1, 1, 1, 2])
                extra = {"value": round(price * qty, 2), "currency": "EUR", "num_items": qty} if name != "ViewContent" else {}
                out.append(event(user, n, sid, sname, name, t, content_name=item, content_category=cat, **extra))
            elif kind == "game":
                sid = rng.choice(list(GAMES))
                sname, titles = GAMES[sid]
                out.append(event(user, n, sid, sname, "GamePlayed", t, "app", content_name=rng.choice(titles),
                                 properties={"duration_minutes": str(rng.randrange(10, 120)),
                                             "level": str(rng.randrange(1, 40))}))
            elif kind == "app":
                sid = rng.choice(list(APPS))
                out.append(event(user, n, sid, APPS[sid], rng.choice(["AppInstall", "AppOpen"]), t, "app"))
            elif kind == "travel":
                sid = rng.choice(list(TRAVEL))
                sname, name = TRAVEL[sid]
                origin, dest = rng.sample(CITIES, 2)
                props = {"destination": dest, "travel_date": "2026-12-%02d" % rng.randrange(1, 29)}
                if name != "HotelBooked":
                    props["origin"] = origin
                out.append(event(user, n, sid, sname, name, t, value=float(rng.randrange(80, 900)),
                                 currency="EUR", properties=props))
            elif kind == "sub":
                sid = rng.choice(list(SUBS))
                sname, plans = SUBS[sid]
                name = rng.choice(["Subscribe", "StartTrial", "CompleteRegistration"])
                out.append(event(user, n, sid, sname, name, t, content_name=rng.choice(plans)))
            else:
                sid = rng.choice(["acme-outdoors", "greenleaf", "megastore"])
                out.append(event(user, n, sid, SHOPS[sid][0], "Search", t, search_string=rng.choice(SEARCHES)))
    with open("events.jsonl", "w") as f:
        for e in out:
            f.write(json.dumps(e, ensure_ascii=False) + "\n")
    # Consents: every user permits the chat assistant for every source they
    # use, except u_eun, who never agreed to MegaStore (those events are
    # rejected with NO_CONSENT); u_bob also permits feed ranking for shops.
    consents = []
    for user in USERS:
        for source in sorted({e["source_id"] for e in out if e["user_id"] == user}):
            if user == "u_eun" and source == "megastore":
                continue
            consents.append({"user_id": user, "source_id": source, "purpose": "chat_assistant", "state": "granted"})
            if user == "u_bob" and source in SHOPS:
                consents.append({"user_id": user, "source_id": source, "purpose": "feed_ranking", "state": "granted"})
    with open("consents.jsonl", "w") as f:
        for c in consents:
            f.write(json.dumps(c) + "\n")
    print(f"wrote {len(out)} events for {len(USERS)} users and {len(consents)} consent records")

if __name__ == "__main__":
    main()
