"""SYNTHETIC many-label intent dataset: 150 intents over 10 domains plus out-of-scope lines.

This is NOT CLINC150 nor any public benchmark: no public 150-intent dataset ships in a package on
the registries this project can reach, so the many-label path is tested and benchmarked on this
generated stand-in, shaped like CLINC150's "full" variant (100 training, 20 validation and 30 test
utterances per intent; 100 / 100 / 1,000 out-of-scope lines). Figures measured on it are figures
of this synthetic set only. A real CLINC150 ``data_full.json`` converts with
``hotpath intent import-clinc``.

How it is built (deterministic, stdlib only):
- an intent is an (action, object) pair of one domain, named ``<action>_<object>``
  (``check_balance``, ``book_flight``); actions are shared by all domains and objects have
  synonyms, so intents of one domain share objects and intents across domains share actions;
- each action has 10 sentence frames: 7 are used for training, 3 only for validation and test
  (so the test split measures generalisation to unseen phrasings, not memorised sentences);
- fillers before/after, and a small rate of typos;
- out-of-scope lines are of two kinds: off-topic requests (trivia, chit-chat, tasks no intent
  covers) and near misses: an action and an object of the domains that form no intent
  ("cancel my routing number"); the near-miss pairs and off-topic frames of the test split are
  never seen in training.

    python data/intent/manylabel.py --out DIR [--intents 150] [--train 100] [--val 20] [--test 30]
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

SOURCE = "synthetic-manylabel-v1"

# action -> 10 frames ({o}: the object); frames 0-6 train, 7-9 held out
ACTIONS: dict[str, list[str]] = {
    "check": ["what is my {o}", "check my {o}", "show me my {o}", "tell me my {o}", "i want to see my {o}",
              "pull up my {o}", "look at my {o} for me", "how is my {o} looking", "give me the status of my {o}",
              "can i see where my {o} stands"],
    "change": ["change my {o}", "i need to update my {o}", "can you modify my {o}", "edit my {o}",
               "make a change to my {o}", "i'd like to adjust my {o}", "switch my {o} to something else",
               "alter my {o}", "i want a different {o}", "help me revise my {o}"],
    "cancel": ["cancel my {o}", "i want to cancel the {o}", "get rid of my {o}", "please cancel the {o}",
               "i no longer need my {o}", "stop my {o}", "terminate my {o}", "call off my {o}", "drop my {o}",
               "i'd like to scrap the {o}"],
    "book": ["book a {o}", "reserve a {o}", "i need to book a {o}", "get me a {o}", "can you reserve a {o}",
             "make a booking for a {o}", "i'd like to reserve a {o}", "arrange a {o} for me",
             "secure a {o} for next week", "set me up with a {o}"],
    "report": ["report a problem with my {o}", "my {o} is broken", "something is wrong with my {o}",
               "i have an issue with my {o}", "my {o} is not working", "file a complaint about my {o}",
               "there is a problem with the {o}", "the {o} stopped working", "i need to flag my {o}",
               "my {o} keeps acting up"],
    "pay": ["pay my {o}", "make a payment on my {o}", "i want to pay the {o}", "send a payment for my {o}",
            "settle my {o}", "pay off the {o}", "submit payment for my {o}", "take care of paying my {o}",
            "clear what i owe on my {o}", "put money toward my {o}"],
    "find": ["where is my {o}", "find my {o}", "locate my {o}", "help me find the {o}", "i can't find my {o}",
             "where did my {o} go", "search for my {o}", "track down my {o}", "i lost my {o}",
             "where can i get my {o}"],
    "explain": ["how does the {o} work", "explain the {o} to me", "what is a {o}", "help me understand the {o}",
                "i don't understand my {o}", "tell me how the {o} works", "what does {o} mean",
                "walk me through the {o}", "i'm confused about my {o}", "give me the basics of the {o}"],
    "recommend": ["recommend a {o}", "which {o} should i get", "suggest a good {o}", "what's the best {o}",
                  "help me pick a {o}", "what {o} do you suggest", "give me ideas for a {o}",
                  "what {o} would you recommend", "choose a {o} for me", "any tips on a good {o}"],
    "add": ["add a {o}", "create a new {o}", "i want to add a {o}", "set up a new {o}", "make a new {o}",
            "open a new {o}", "register a new {o}", "start a fresh {o}", "put another {o} on my account",
            "i need one more {o}"],
    "cost": ["how much does a {o} cost", "what is the price of a {o}", "how expensive is a {o}",
             "what's the fee for a {o}", "how much would a {o} be", "what will a {o} cost me",
             "tell me the price of a {o}", "is a {o} expensive", "price check on a {o}",
             "what do they charge for a {o}"],
    "schedule": ["when is my {o}", "what time is my {o}", "put my {o} on the calendar", "schedule my {o}",
                 "remind me about my {o}", "when do i have my {o}", "plan my {o} for next week",
                 "what day is my {o}", "set a date for my {o}", "is my {o} coming up soon"],
    "turn_on": ["turn on the {o}", "switch on the {o}", "start the {o}", "power up the {o}", "activate the {o}",
                "get the {o} going", "fire up the {o}", "enable the {o}", "bring the {o} online",
                "wake up the {o}"],
    "turn_off": ["turn off the {o}", "switch off the {o}", "shut down the {o}", "power down the {o}",
                 "deactivate the {o}", "kill the {o}", "disable the {o}", "put the {o} to sleep",
                 "stop the {o} running", "cut the {o}"],
}

# domain -> object -> (synonyms, actions that form an intent with it); 15 intents per domain
DOMAINS: dict[str, dict[str, tuple[list[str], list[str]]]] = {
    "banking": {
        "balance": (["account balance", "balance", "available funds"], ["check", "explain"]),
        "routing": (["routing number", "bank routing number"], ["check", "find"]),
        "pin": (["pin", "card pin", "pin number"], ["change", "report"]),
        "deposit": (["direct deposit", "paycheck deposit"], ["add", "cancel", "schedule"]),
        "transactions": (["transaction history", "recent transactions", "account activity"], ["check", "report"]),
        "transfer": (["wire transfer", "money transfer", "bank transfer"], ["add", "cancel", "cost"]),
        "statement": (["bank statement", "monthly statement"], ["find"]),
    },
    "credit": {
        "credit_limit": (["credit limit", "spending limit"], ["check", "change"]),
        "credit_score": (["credit score", "fico score"], ["check", "explain"]),
        "rewards": (["rewards points", "reward miles", "cashback rewards"], ["check", "explain"]),
        "card": (["credit card", "visa card", "card"], ["add", "cancel", "report", "recommend"]),
        "card_bill": (["credit card bill", "card payment", "card balance due"], ["pay", "schedule"]),
        "apr": (["interest rate", "apr"], ["check", "explain", "change"]),
    },
    "travel": {
        "flight": (["flight", "plane ticket", "airline ticket"], ["book", "cancel", "change", "schedule"]),
        "hotel": (["hotel room", "hotel", "place to stay"], ["book", "cancel", "recommend"]),
        "rental_car": (["rental car", "car rental", "hire car"], ["book", "cost"]),
        "passport": (["passport", "travel document"], ["find", "add"]),
        "luggage": (["luggage", "checked bag", "suitcase"], ["find", "report"]),
        "visa": (["travel visa", "entry visa"], ["explain", "cost"]),
    },
    "dining": {
        "table": (["restaurant table", "dinner table", "table for two"], ["book", "cancel"]),
        "takeout": (["takeout order", "food delivery", "delivery order"], ["add", "find", "cancel", "cost"]),
        "recipe": (["recipe", "dinner recipe", "meal idea"], ["recommend", "find"]),
        "grocery_list": (["grocery list", "shopping list"], ["check", "add", "change"]),
        "restaurant": (["restaurant", "place to eat", "spot for lunch"], ["recommend", "report"]),
        "calories": (["calorie count", "nutrition facts"], ["check", "explain"]),
    },
    "home": {
        "lights": (["lights", "living room lights", "lamp"], ["turn_on", "turn_off", "report"]),
        "thermostat": (["thermostat", "heating", "air conditioning"], ["turn_on", "turn_off", "change", "check"]),
        "alarm_system": (["alarm system", "security alarm", "house alarm"], ["turn_on", "turn_off"]),
        "vacuum": (["robot vacuum", "vacuum cleaner"], ["turn_on", "schedule"]),
        "smart_lock": (["smart lock", "front door lock"], ["check", "report"]),
        "sprinkler": (["sprinkler", "garden sprinklers"], ["turn_on", "schedule"]),
    },
    "auto": {
        "oil_change": (["oil change", "oil service"], ["schedule", "cost", "book"]),
        "tires": (["tire pressure", "tires", "tyre pressure"], ["check", "report", "cost"]),
        "car_battery": (["car battery", "battery"], ["check", "report", "cost"]),
        "car_insurance": (["car insurance", "auto policy", "vehicle insurance"], ["check", "change", "pay"]),
        "parking": (["parking spot", "parking space", "parking"], ["find", "book", "pay"]),
    },
    "work": {
        "meeting": (["meeting", "team meeting", "one on one"], ["book", "cancel", "schedule", "change"]),
        "vacation_days": (["vacation days", "paid time off", "pto"], ["check", "add"]),
        "payroll": (["paycheck", "payroll", "salary payment"], ["check", "report", "explain"]),
        "expense_report": (["expense report", "expense claim", "reimbursement form"], ["add", "check", "find"]),
        "work_laptop": (["work laptop", "office computer"], ["report", "recommend", "find"]),
    },
    "phone": {
        "ringtone": (["ringtone", "ring tone", "notification sound"], ["change", "recommend"]),
        "timer": (["timer", "countdown", "kitchen timer"], ["add", "cancel", "check"]),
        "wake_alarm": (["wake up alarm", "morning alarm", "alarm clock"], ["add", "cancel", "change"]),
        "contacts": (["contact list", "phone contacts", "address book"], ["add", "find"]),
        "wifi": (["wifi", "wireless network", "internet connection"], ["turn_on", "turn_off", "report"]),
        "bluetooth": (["bluetooth", "bluetooth connection"], ["turn_on", "turn_off"]),
    },
    "health": {
        "doctor_visit": (["doctor appointment", "checkup", "visit with my doctor"], ["book", "cancel", "schedule"]),
        "prescription": (["prescription", "medication refill", "meds"], ["add", "check", "find"]),
        "vaccine": (["vaccine", "flu shot", "booster shot"], ["book", "explain", "cost"]),
        "health_claim": (["insurance claim", "medical claim"], ["add", "check"]),
        "steps": (["step count", "daily steps"], ["check", "explain"]),
        "pharmacy": (["pharmacy", "drugstore"], ["find", "recommend"]),
    },
    "shopping": {
        "package": (["package", "parcel", "delivery"], ["find", "report", "schedule"]),
        "online_order": (["online order", "purchase", "order"], ["add", "cancel", "check", "change"]),
        "return_label": (["return label", "return slip"], ["add", "find"]),
        "subscription": (["subscription", "monthly plan", "membership"], ["cancel", "check", "change", "pay"]),
        "gift_card": (["gift card", "store voucher"], ["check", "recommend"]),
    },
}

PREFIXES = ["", "", "", "hey ", "please ", "can you ", "could you ", "i need you to ", "quick question ", "um ",
            "ok so ", "hi there ", "excuse me ", "assistant "]
SUFFIXES = ["", "", "", " please", " right now", " for me", " today", " thanks", " asap", " if you can",
            " when you get a chance", " real quick"]

# off-topic out-of-scope: 20 frames with fillers (frames 0-11 train/val, 12-19 test only)
OFF_TOPIC = [
    "who won the world cup in {year}", "what is the capital of {country}", "how tall is {landmark}",
    "tell me a fun fact about {animal}s", "write a poem about {thing}", "what's the meaning of {word}",
    "how do i fix a leaky {thing}", "play a game of chess with me", "what is {n} times {m}",
    "who wrote the book about {thing}", "sing me a song about {animal}s", "how far away is {country}",
    "how old is {landmark}", "what language do they speak in {country}", "can {animal}s swim",
    "draw a picture of a {animal}", "what year was {landmark} built", "why is the sky blue over {country}",
    "how many legs does a {animal} have", "teach me to juggle {thing}s",
]
FILL = {
    "year": ["1998", "2006", "2014", "1970", "1986"],
    "country": ["france", "peru", "kenya", "japan", "norway", "chile", "egypt", "canada"],
    "landmark": ["the eiffel tower", "mount everest", "the statue of liberty", "big ben", "the great wall"],
    "animal": ["octopus", "penguin", "giraffe", "owl", "dolphin", "koala", "zebra"],
    "thing": ["faucet", "sunsets", "the ocean", "bicycle", "autumn", "teapot", "umbrella"],
    "word": ["serendipity", "ephemeral", "ubiquitous", "quixotic", "melancholy"],
    "n": ["seven", "12", "nine", "31"],
    "m": ["eight", "4", "eleven", "6"],
}


def intents() -> list[tuple[str, str, str]]:
    """(label, action, object key) of every intent, in a fixed order."""
    out = []
    for objects in DOMAINS.values():
        for obj, (_, actions) in objects.items():
            for action in actions:
                out.append((f"{action}_{obj}", action, obj))
    return out


def _synonyms(obj: str) -> list[str]:
    for objects in DOMAINS.values():
        if obj in objects:
            return objects[obj][0]
    raise KeyError(obj)


def _typo(rng: random.Random, text: str) -> str:
    words = text.split()
    i = rng.randrange(len(words))
    w = words[i]
    if len(w) > 3:
        j = rng.randrange(1, len(w) - 1)
        words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2:]
    return " ".join(words)


def _dress(rng: random.Random, core: str) -> str:
    text = rng.choice(PREFIXES) + core + rng.choice(SUFFIXES)
    return _typo(rng, text) if rng.random() < 0.05 else text


def _sample(rng: random.Random, make, n: int, taken: set[str], tries: int = 200) -> list[str]:
    out: list[str] = []
    for _ in range(n * tries):
        if len(out) == n:
            break
        text = make()
        if text not in taken:
            taken.add(text)
            out.append(text)
    return out


def _near_miss_pairs() -> list[tuple[str, str]]:
    """(action, object) pairs of a domain that form no intent, in a fixed order."""
    defined = {(a, o) for _, a, o in intents()}
    pairs = []
    for objects in DOMAINS.values():
        actions = sorted({a for _, acts in objects.values() for a in acts})
        for obj in objects:
            pairs += [(a, obj) for a in actions if (a, obj) not in defined]
    return pairs


def generate(n_intents: int = 150, n_train: int = 100, n_val: int = 20, n_test: int = 30,
             oos: tuple[int, int, int] = (100, 100, 1000), seed: int = 0) -> dict[str, list[dict[str, str]]]:
    """{"train": rows, "val": rows, "test": rows}; a row is {"text", "intent", "source"}.

    ``n_intents`` < 150 takes an evenly spread subset (for the CI slice); no text occurs twice.
    """
    rng = random.Random(seed)
    chosen = intents()
    if n_intents < len(chosen):
        step = len(chosen) / n_intents
        chosen = [chosen[int(i * step)] for i in range(n_intents)]
    taken: set[str] = set()
    splits: dict[str, list[dict[str, str]]] = {"train": [], "val": [], "test": []}
    for label, action, obj in chosen:
        frames, syns = ACTIONS[action], _synonyms(obj)
        for split, n, pool in (("test", n_test, frames[7:]), ("val", n_val, frames[7:]), ("train", n_train, frames[:7])):
            texts = _sample(rng, lambda: _dress(rng, rng.choice(pool).format(o=rng.choice(syns))), n, taken)
            splits[split] += [{"text": t, "intent": label, "source": SOURCE} for t in texts]
    near = _near_miss_pairs()
    rng.shuffle(near)
    seen_near, test_near = near[: len(near) // 2], near[len(near) // 2:]

    def near_miss(pairs):
        def make() -> str:
            action, obj = rng.choice(pairs)
            return _dress(rng, rng.choice(ACTIONS[action]).format(o=rng.choice(_synonyms(obj))))
        return make

    def off_topic(frames):
        def make() -> str:
            frame = rng.choice(frames)
            return _dress(rng, frame.format(**{k: rng.choice(v) for k, v in FILL.items()}))
        return make

    for split, n, near_pairs, frames in (("test", oos[2], test_near, OFF_TOPIC[12:]),
                                         ("val", oos[1], seen_near, OFF_TOPIC[:12]),
                                         ("train", oos[0], seen_near, OFF_TOPIC[:12])):
        n_near = int(n * 0.4)
        texts = _sample(rng, near_miss(near_pairs), n_near, taken) + _sample(rng, off_topic(frames), n - n_near, taken)
        splits[split] += [{"text": t, "intent": "oos", "source": SOURCE} for t in texts]
    for rows in splits.values():
        rng.shuffle(rows)
    return splits


def write(out: Path, splits: dict[str, list[dict[str, str]]]) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, rows in splits.items():
        path = out / f"{name}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        paths[name] = path
    return paths


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--intents", type=int, default=150)
    ap.add_argument("--train", type=int, default=100)
    ap.add_argument("--val", type=int, default=20)
    ap.add_argument("--test", type=int, default=30)
    ap.add_argument("--oos", type=int, nargs=3, default=(100, 100, 1000), metavar=("TRAIN", "VAL", "TEST"))
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    splits = generate(a.intents, a.train, a.val, a.test, tuple(a.oos), a.seed)
    for name, path in write(a.out, splits).items():
        print(f"{path}: {len(splits[name])} lines (synthetic)")


if __name__ == "__main__":
    main()
