"""Generate the intent dataset: hand-written seeds + templated utterances, split into fixed files.

    .venv/bin/python data/intent/generate.py            # rewrites train/val/test.jsonl here

Deterministic (seeded): rerunning it yields byte-identical files, so the splits are versioned by
this script plus ``seeds.jsonl``. Each utterance is ``{"text", "intent", "source"}`` with source
``seed`` or ``template``. Texts are unique across the three files (compared lowercased, without
punctuation), so no test sentence is also a training sentence.

Variety comes from: many verb phrasings per intent, people (names, roles, Vietnamese names with
and without diacritics), teams, places written as digits, number words, letters, NATO letters and
``warehouse-B`` forms, politeness / urgency / filler words, and ASR-style slips (``dial`` ->
``file``, ``aisle`` -> ``isle``, ``summon`` -> ``salmon``, dropped or doubled words).
Hard negatives are deliberate: ``call off the crew`` is CANCEL, ``call an ambulance`` is
EMERGENCY, ``who do I call about ...`` is GENERAL_QUERY, ``cancel my netflix`` is oos.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 20261126
SPLITS = {"train": 0.70, "val": 0.15, "test": 0.15}
TARGET = {  # templated utterances per intent (before de-duplication)
    "DIAL_PERSON": 560,
    "SUMMON_TEAM": 620,
    "EMERGENCY": 420,
    "CANCEL": 380,
    "GENERAL_QUERY": 560,
    "oos": 600,
}

NAMES = [
    "nguyen", "tran", "le", "pham", "hoang", "vu", "minh", "linh", "duc", "huong", "anh", "thanh",
    "maria", "john", "ahmed", "priya", "carlos", "chen", "kowalski", "fatima", "dmitri", "sato",
    "mendes", "okafor", "garcia", "patel", "kim", "sarah", "mike", "jose", "aisha", "tom", "lucy",
    "raj", "omar", "elena", "hans", "yuki", "pedro", "grace", "kevin", "nadia", "ben", "rosa",
    "nguyen van an", "tran thi mai", "le quang huy", "pham minh tuan", "big dave", "old pete",
]
VI_DIACRITIC = {"nguyen": "Nguyễn", "tran": "Trần", "pham": "Phạm", "hoang": "Hoàng", "vu": "Vũ",
                "duc": "Đức", "huong": "Hương", "thanh": "Thành", "le": "Lê", "minh": "Minh"}
TITLES = ["technician", "tech", "mr", "ms", "mrs", "doctor", "engineer", "operator", "driver",
          "supervisor", "foreman", "inspector", ""]
ROLES = [
    "safety officer", "shift supervisor", "floor lead", "plant manager", "dock manager",
    "night supervisor", "hr", "first aid officer", "quality inspector", "site nurse", "foreman",
    "warehouse manager", "it help desk", "maintenance lead", "electrician on duty", "security desk",
    "front gate", "line lead", "team leader", "my supervisor", "the boss", "control room",
    "dispatch", "the office", "logistics coordinator", "inventory manager", "health and safety",
]
TEAMS = [
    "cleaning crew", "maintenance team", "maintenance", "forklift team", "security",
    "first aid team", "fire wardens", "a supervisor", "the floor lead", "spill response team",
    "it support", "an electrician", "the loading crew", "extra pickers", "quality team",
    "safety team", "medics", "janitorial", "the cleanup crew", "hazmat team", "a couple of hands",
    "a forklift driver", "a technician", "two pickers", "the night crew", "the packing team",
    "a mechanic", "the rigging crew", "a reach truck", "backup", "some help", "a lead",
    "the shift supervisor", "someone from quality", "a cleaner", "the ehs team",
]
NUM_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
             "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
             "eighteen", "nineteen", "twenty"]
NATO = {"a": "alpha", "b": "bravo", "c": "charlie", "d": "delta", "e": "echo", "f": "foxtrot"}
NUMBERED = ["loading dock", "dock", "aisle", "bay", "gate", "line", "door", "level", "conveyor",
            "packing station", "cell", "freezer", "rack"]
LETTERED = ["zone", "warehouse", "building", "hall", "area"]
PLACES = ["receiving", "shipping", "the cold room", "the mezzanine", "the break room",
          "the charging room", "the freezer", "the loading dock", "the yard", "the canteen",
          "the battery room", "the front gate", "the parking lot", "the returns area",
          "the compressor room", "the roof", "the stairwell", "the control room"]


def number(rng: random.Random) -> str:
    n = rng.randint(1, 20)
    form = rng.random()
    if form < 0.45:
        return str(n)
    if form < 0.85:
        return NUM_WORDS[n]
    return rng.choice([f"number {n}", f"#{n}", f"no. {n}", f"{n}"])


def location(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.55:
        return f"{rng.choice(NUMBERED)} {number(rng)}"
    if r < 0.85:
        kind = rng.choice(LETTERED)
        letter = rng.choice("abcdef")
        form = rng.random()
        if form < 0.5:
            return f"{kind} {letter.upper() if rng.random() < 0.5 else letter}"
        if form < 0.75:
            return f"{kind}-{letter.upper()}"
        return f"{kind} {NATO[letter]}"
    return rng.choice(PLACES)


def person(rng: random.Random) -> str:
    if rng.random() < 0.45:
        return rng.choice(ROLES) if rng.random() < 0.5 else "the " + rng.choice(ROLES).removeprefix("the ")
    name = rng.choice(NAMES)
    if name in VI_DIACRITIC and rng.random() < 0.25:
        name = VI_DIACRITIC[name]
    title = rng.choice(TITLES)
    return f"{title} {name}".strip()


def team(rng: random.Random) -> str:
    return rng.choice(TEAMS)


def pick(rng: random.Random, options: list[str]) -> str:
    return rng.choice(options)


PREFIX = ["", "", "", "", "hey watch ", "ok ", "um ", "uh ", "please ", "quick ", "hey ", "yo ",
          "alright ", "watch ", "so ", "hi "]
SUFFIX = ["", "", "", "", " please", " now", " asap", " right away", " thanks", " quick",
          " immediately", " for me", " real quick", " okay"]

DIAL = [
    "call {p}", "dial {p}", "ring {p}", "phone {p}", "call up {p}", "give {p} a call",
    "get {p} on the line", "get me {p}", "connect me to {p}", "connect me with {p}",
    "put me through to {p}", "i need to talk to {p}", "i wanna speak with {p}", "let me talk to {p}",
    "can you call {p}", "could you dial {p}", "start a call with {p}", "voice call {p}",
    "make a call to {p}", "call {p} for me", "please ring {p}", "buzz {p}", "get {p} on the radio",
    "raise {p} on the radio", "try {p} again", "call {p} back", "i need {p} on the phone",
    "dial up {p}", "place a call to {p}", "contact {p}", "reach {p}", "hook me up with {p}",
    "can i speak to {p}", "patch me through to {p}", "get hold of {p}", "video call {p}",
    "ping {p} on a call", "talk to {p}", "i gotta call {p}", "need to ring {p} about {topic}",
    "call {p} about {topic}", "phone {p} regarding {topic}",
]
SUMMON = [
    "need {t} at {l}", "send {t} to {l}", "summon {t} to {l}", "get {t} to {l}",
    "i need {t} at {l}", "we need {t} over at {l}", "can i get {t} at {l}", "bring {t} to {l}",
    "get {t} down to {l}", "have {t} come to {l}", "{t} to {l}", "{t} needed at {l}",
    "request {t} at {l}", "dispatch {t} to {l}", "get {t} here now", "need {t} here",
    "send {t} over", "i need {t} over here", "get {t} over to {l} {reason}",
    "{reason} send {t} to {l}", "need {t} at {l} {reason}", "could you send {t} to {l}",
    "please have {t} meet me at {l}", "call {t} to {l}", "call {t} over to {l}",
    "get {t} out to {l}", "we could use {t} at {l}", "send {t}", "summon {t}",
    "need {t} asap", "can {t} come to {l}", "ask {t} to come to {l}", "page {t} to {l}",
    "i need some {t} at {l}", "{reason} need {t}", "get {t} up here",
    "requesting {t} at {l}", "send over {t} to {l}", "bring {t} over here",
]
REASONS = ["the conveyor jammed", "there's a spill", "pallet fell over", "the door is stuck",
           "the scanner died", "we're behind on picking", "truck just arrived", "light is out",
           "the wrapper broke", "leaking pipe", "trailer needs unloading", "it's a mess here",
           "the printer jammed", "boxes everywhere", "the lift won't start"]
TOPICS = ["the schedule", "the shipment", "the delivery", "my shift", "the order", "the forklift",
          "the inventory count", "tomorrow", "the truck", "the pallets"]
EMERG = [
    "emergency", "emergency at {l}", "sos", "help", "help help", "help me", "i need help now",
    "man down at {l}", "man down", "fire at {l}", "fire in {l}", "there's a fire", "fire fire",
    "smoke in {l}", "gas leak at {l}", "someone is hurt at {l}", "someone fell at {l}",
    "worker injured at {l}", "call an ambulance", "get an ambulance to {l}", "call 911",
    "call nine one one", "medical emergency at {l}", "{who} collapsed at {l}",
    "{who} is not breathing", "{who} is bleeding", "{who} fell off the ladder",
    "{who} got hit by a forklift", "forklift accident at {l}", "chemical spill at {l} evacuate",
    "evacuate {l}", "explosion in {l}", "i'm hurt", "i'm injured", "i'm trapped in {l}",
    "{who} is trapped under a pallet", "rack collapse in {l}", "heart attack at {l}",
    "{who} passed out at {l}", "urgent help needed at {l}", "mayday", "red alert at {l}",
    "{who} got electrocuted at {l}", "ammonia leak in {l}", "sound the alarm", "pull the fire alarm",
    "i fell and can't get up", "{who} is unconscious", "need first aid now at {l}",
    "{who} hurt his back badly", "{who} broke her arm", "there's been an accident at {l}",
]
WHO = ["someone", "a worker", "my coworker", "the driver", "a guy", "a girl", "he", "she",
       "somebody", "the new guy", "a picker", "an operator", "{n}"]
CANCEL = [
    "cancel", "cancel that", "cancel it", "never mind", "nevermind", "forget it", "forget that",
    "scratch that", "stop", "stop that", "abort", "abort that", "hang up", "end the call",
    "end call", "stop the call", "disregard", "disregard that", "ignore that", "undo",
    "don't send them", "don't call {p}", "call off {t}", "call off the request", "cancel the call",
    "cancel the call to {p}", "cancel {t}", "cancel the request for {t}", "stand down",
    "tell {t} to stand down", "{t} can stand down", "false alarm", "false alarm cancel the emergency",
    "cancel the emergency", "cancel the sos", "cancel the alarm", "no wait cancel",
    "no no cancel that", "we don't need {t} anymore", "we sorted it cancel {t}",
    "cancel my last request", "don't bother", "drop the call", "stop calling", "kill the call",
    "cancel that order for {t}", "we're good now cancel", "never mind we got it",
    "forget about {t}", "cancel the page", "it's fine, cancel the help request",
    "belay that", "scrap that", "call it off", "nope cancel", "cancel summon", "stop the summon",
    "i'm ok cancel the emergency", "we don't need help anymore",
]
QUERY = [
    "what is the {pol} policy", "what's the policy on {pol}", "what is the {pol} policy for {l}",
    "how do i {task}", "how do you {task}", "how can i {task}", "where do i {task}",
    "what's the procedure for {proc}", "what is the procedure for {proc}",
    "who do i call about {issue}", "who do i talk to about {issue}", "who handles {issue}",
    "what should i do about {issue}", "what do i do if {cond}", "where is the {thing}",
    "where's the nearest {thing}", "when does {event}", "what time does {event}",
    "do i need {ppe} in {l}", "is {ppe} required in {l}", "what ppe do i need for {l}",
    "how many {item} are in {l}", "how many {item} are left", "what's the stock level of {item}",
    "what's the max load for {l}", "what are the rules for {proc}", "explain {proc}",
    "tell me about the {pol} policy", "remind me of the {pol} rules", "can i {perm}",
    "am i allowed to {perm}", "is it ok to {perm}", "what's the number for {team}",
    "what's the extension for {role}", "who is on call for {team} tonight",
    "which dock is the {carrier} truck at", "has the {carrier} truck arrived",
    "when is the next {event2}", "what's my schedule {when}", "how long is {event2}",
    "what's the speed limit for forklifts in {l}", "is {l} open {when}",
    "how do i call {p} from the watch", "how do i summon {t}", "why is {l} closed",
    "what does {acr} stand for", "how do i log a {report}", "where do i file a {report}",
    "who approves {req}", "how do i request {req}", "what's the status of my {req}",
]
POLICIES = ["ppe", "hazardous spill", "overtime", "break", "sick leave", "phone use", "visitor",
            "smoking", "forklift", "ladder safety", "hearing protection", "lifting", "dress code",
            "chemical storage", "lockout tagout", "hazmat", "late arrival", "vacation", "safety"]
TASKS = ["report a broken scanner", "reset my wms password", "request overtime", "swap a shift",
         "book vacation", "log a near miss", "report an injury", "get forklift certified",
         "print a shipping label", "return damaged goods", "clock in", "replace a scanner battery",
         "charge the forklift battery", "wrap a pallet", "recycle cardboard", "find a sku",
         "update my address", "get new safety boots", "report a hazard", "use the baler"]
PROCS = ["hazardous spills", "lockout tagout", "fire drills", "returns", "cycle counts",
         "receiving a delivery", "a chemical spill", "lifting heavy boxes", "working at height",
         "evacuation", "a forklift inspection", "handling lithium batteries", "cold storage entry"]
ISSUES = ["a broken scanner", "payroll", "a broken forklift", "my badge", "a damaged pallet",
          "a missing shipment", "the wifi", "a leaking roof", "my schedule", "my locker",
          "a faulty charger", "expired stock"]
CONDS = ["the alarm goes off", "a pallet is damaged", "i find a spill", "the scanner won't sync",
         "i miss my shift", "a truck is late", "the freezer is too warm", "my badge doesn't work",
         "i see a hazard"]
THINGS = ["eye wash station", "fire extinguisher", "first aid kit", "assembly point",
          "defibrillator", "break room", "spill kit", "charging station", "restroom", "exit",
          "hr office", "lost and found", "tool crib", "locker room"]
EVENTS = ["second shift start", "the shift change happen", "my break start", "the canteen open",
          "payday come", "the safety meeting start", "the audit begin", "night shift end"]
EVENTS2 = ["safety training", "forklift course", "team meeting", "fire drill", "inventory count",
           "lunch break", "toolbox talk", "audit"]
PPE = ["a hard hat", "gloves", "safety glasses", "a hi vis vest", "steel toe boots",
       "a harness", "ear plugs", "a respirator"]
ITEMS = ["pallets", "boxes", "cases of water", "scanners", "totes", "labels", "rolls of wrap"]
PERMS = ["wear sneakers in the warehouse", "use my phone on the floor", "leave early today",
         "take my break now", "park in the yard", "bring a visitor", "eat at my station",
         "skip the safety meeting"]
CARRIERS = ["fedex", "ups", "dhl", "maersk", "amazon", "morning", "afternoon"]
WHEN = ["tomorrow", "this week", "tonight", "on sunday", "next week", "today"]
ACRONYMS = ["ppe", "wms", "sku", "loto", "ehs", "fifo", "asn"]
REPORTS = ["near miss report", "incident report", "maintenance ticket", "damage report",
           "hazard report"]
REQS = ["overtime", "time off", "a shift swap", "new gloves", "a parking permit", "training"]
OOS = [
    "what's the weather {when}", "will it rain {when}", "tell me a joke", "tell me a story",
    "who won the {sport} game", "did you see the {sport} game", "play some {music}",
    "play {music} music", "turn up the volume", "set a timer for {n} minutes",
    "set an alarm for {n} am", "remind me to {chore}", "what's the capital of {country}",
    "how tall is {landmark}", "who is the president of {country}", "translate {phrase} into {lang}",
    "order me a {food}", "i'm hungry", "i want {food} for lunch", "this {food} is terrible",
    "book a table for {n}", "my {family} is picking me up at {n}", "i called my {family} yesterday",
    "my {family} called me earlier", "cancel my {subscr} subscription", "cancel my {subscr}",
    "help me with my {hobby}", "i need help with my homework", "the fire in that movie was crazy",
    "that movie was fire", "he's such an emergency room fan", "call me maybe is a great song",
    "call it a day soon i guess", "what a day", "i'm tired", "lol okay", "haha", "yeah yeah",
    "uh huh", "hmm", "mm okay", "testing testing", "testing one two three", "blah blah",
    "is this thing on", "can you hear me", "what's up", "good morning", "good night",
    "how are you", "thank you", "thanks a lot", "you're welcome", "nice", "cool", "okay",
    "what's your name", "are you a robot", "do you like {sport}", "i love {food}",
    "did you hear about {gossip}", "{gossip} is getting married", "the new guy is pretty funny",
    "what's the score", "how old is {celebrity}", "who sings {song}", "read me the news",
    "what's bitcoin at", "how much is a {car}", "i'm thinking about buying a {car}",
    "where should we go for dinner", "my back hurts from the gym", "i slept badly",
    "send my mom a birthday card", "text my wife i'm running late", "what's on tv tonight",
    "open {app}", "take a selfie", "turn on the flashlight", "what's the meaning of life",
    "sing me a song", "how do you make {food}", "recommend a {media}", "flip a coin",
    "roll a dice", "what day is it", "what time is it in {city}", "how far is {city}",
    "book a flight to {city}", "call a taxi to {city} airport tonight for my trip",
    "dial it down a bit man", "ring ring who's there", "summon the dragon", "help yourself to cake",
    "don't call me that", "stop talking about {sport}", "abort mission lol just kidding",
]
SPORTS = ["football", "soccer", "basketball", "baseball", "cricket", "hockey", "tennis"]
MUSIC = ["jazz", "rock", "pop", "country", "lofi", "some tunes", "the radio", "taylor swift"]
CHORES = ["buy milk", "call the bank", "pick up the kids", "pay rent", "water the plants",
          "feed the cat", "book a dentist"]
COUNTRIES = ["australia", "france", "brazil", "vietnam", "canada", "japan", "kenya", "peru"]
LANDMARKS = ["mount everest", "the eiffel tower", "the empire state building", "big ben"]
PHRASES = ["good morning", "thank you", "where is the bathroom", "i love you"]
LANGS = ["spanish", "vietnamese", "french", "german", "japanese"]
FOODS = ["pizza", "burger", "pho", "sushi", "coffee", "sandwich", "banh mi", "tacos", "salad"]
FAMILY = ["wife", "husband", "mom", "dad", "sister", "brother", "kid", "girlfriend", "boyfriend"]
SUBSCR = ["netflix", "spotify", "gym", "magazine", "phone plan", "amazon prime"]
HOBBIES = ["guitar", "fantasy team", "garden", "car", "crossword"]
GOSSIP = ["sarah from accounting", "the boss", "mike", "the new manager", "linh"]
CELEBS = ["tom cruise", "beyonce", "messi", "the queen"]
SONGS = ["bohemian rhapsody", "hello", "shape of you", "yesterday"]
CARS = ["tesla", "pickup truck", "motorbike", "honda civic", "used car"]
APPS = ["spotify", "youtube", "the camera", "maps", "instagram", "tiktok"]
MEDIA = ["movie", "book", "podcast", "show", "game"]
CITIES = ["tokyo", "hanoi", "saigon", "london", "paris", "new york", "da nang"]

ASR = {  # plausible speech-recognition slips (word -> alternatives)
    "dial": ["file", "dile", "dyle", "vile"], "call": ["col", "cool", "caul", "called"],
    "summon": ["salmon", "some in", "sum on"], "send": ["sand", "sent", "sen"],
    "aisle": ["isle", "i'll", "isles"], "dock": ["doc", "duck", "dog"], "crew": ["grew", "crue"],
    "team": ["teem", "tea"], "cancel": ["cancer", "council", "cancell", "can sell"],
    "emergency": ["emergence see", "emergent see", "mergency"], "ambulance": ["ambience", "amber lance"],
    "supervisor": ["super visor", "supervise her"], "maintenance": ["maintain ants", "maintenants"],
    "forklift": ["fork lift", "fork left"], "zone": ["zoom", "zones", "sewn"], "four": ["for", "fore"],
    "two": ["to", "too"], "eight": ["ate"], "fire": ["far", "fyre"], "help": ["hell", "yelp"],
    "ring": ["wring", "rain"], "phone": ["foam", "fone"], "security": ["secure tea", "securty"],
    "never": ["neva"], "mind": ["mine"], "warehouse": ["where house", "wearhouse"],
    "policy": ["polity", "pauli see"], "procedure": ["proceed your"], "scanner": ["scammer"],
    "cleaning": ["clean in", "cleanin"], "injured": ["in jured"], "hurt": ["heard"],
    "technician": ["tech mission", "technition"], "electrician": ["elect rician"],
}
NOISE_WORDS = ["uh", "um", "like", "er", "you know", "hmm"]


def fill(template: str, rng: random.Random) -> str:
    def sub(match: re.Match[str]) -> str:
        key = match.group(1)
        if key == "p":
            return person(rng)
        if key == "t":
            return team(rng)
        if key == "l":
            return location(rng)
        if key == "who":
            who = pick(rng, WHO)
            return who.replace("{n}", pick(rng, NAMES))
        if key == "n":
            return str(rng.randint(2, 12)) if rng.random() < 0.5 else NUM_WORDS[rng.randint(2, 12)]
        table = {
            "reason": REASONS, "topic": TOPICS, "pol": POLICIES, "task": TASKS, "proc": PROCS,
            "issue": ISSUES, "cond": CONDS, "thing": THINGS, "event": EVENTS, "event2": EVENTS2,
            "ppe": PPE, "item": ITEMS, "perm": PERMS, "carrier": CARRIERS, "when": WHEN,
            "acr": ACRONYMS, "report": REPORTS, "req": REQS, "team": [t.removeprefix("the ") for t in TEAMS],
            "role": ROLES, "sport": SPORTS, "music": MUSIC, "chore": CHORES, "country": COUNTRIES,
            "landmark": LANDMARKS, "phrase": PHRASES, "lang": LANGS, "food": FOODS, "family": FAMILY,
            "subscr": SUBSCR, "hobby": HOBBIES, "gossip": GOSSIP, "celebrity": CELEBS, "song": SONGS,
            "car": CARS, "app": APPS, "media": MEDIA, "city": CITIES,
        }
        return pick(rng, table[key])

    return re.sub(r"\{(\w+)\}", sub, template)


def asr_noise(text: str, rng: random.Random) -> str:
    words = text.split()
    out: list[str] = []
    dropped = False
    for w in words:
        r = rng.random()
        if w in ASR and r < 0.35:
            out.append(rng.choice(ASR[w]))
        elif r < 0.03 and len(words) >= 5 and not dropped:
            dropped = True  # one dropped word at most, and only from longer utterances
        elif r < 0.05:
            out.extend([w, w])  # stutter
        elif r < 0.07:
            out.extend([rng.choice(NOISE_WORDS), w])
        else:
            out.append(w)
    return " ".join(out) or text


def surface(text: str, rng: random.Random, *, wrap: bool = True, prefix: bool = False) -> str:
    if wrap:
        text = f"{pick(rng, PREFIX)}{text}{pick(rng, SUFFIX)}"
    elif prefix:
        text = f"{pick(rng, PREFIX)}{text}"
    if rng.random() < 0.3:
        text = asr_noise(text, rng)
    r = rng.random()
    if r < 0.15:
        text = text[:1].upper() + text[1:]
    elif r < 0.2:
        text = text.upper()
    if rng.random() < 0.12:
        text += rng.choice(["?", ".", "!", "!!"])
    return re.sub(r"\s+", " ", text).strip()


def templated(rng: random.Random) -> list[dict[str, str]]:
    plan = {
        "DIAL_PERSON": (DIAL, True), "SUMMON_TEAM": (SUMMON, True), "EMERGENCY": (EMERG, False),
        "CANCEL": (CANCEL, False), "GENERAL_QUERY": (QUERY, False), "oos": (OOS, False),
    }
    rows = []
    for intent, (templates, wrap) in plan.items():
        for i in range(TARGET[intent]):
            template = templates[i % len(templates)] if i < 2 * len(templates) else rng.choice(templates)
            text = surface(fill(template, rng), rng, wrap=wrap, prefix=rng.random() < 0.3)
            rows.append({"text": text, "intent": intent, "source": "template"})
    return rows


def key(text: str) -> str:
    return re.sub(r"[^\w ]+", "", text.lower()).strip()


def main() -> None:
    rng = random.Random(SEED)
    seeds = [dict(json.loads(line), source="seed") for line in (HERE / "seeds.jsonl").read_text().splitlines() if line.strip()]
    rows, seen = [], set()
    for row in seeds + templated(rng):
        k = key(row["text"])
        if k and k not in seen:
            seen.add(k)
            rows.append(row)
    rng.shuffle(rows)
    splits: dict[str, list[dict[str, str]]] = {name: [] for name in SPLITS}
    by_intent: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_intent.setdefault(row["intent"], []).append(row)
    for intent in sorted(by_intent):  # stratified
        group = by_intent[intent]
        n_val = round(len(group) * SPLITS["val"])
        n_test = round(len(group) * SPLITS["test"])
        splits["test"] += group[:n_test]
        splits["val"] += group[n_test:n_test + n_val]
        splits["train"] += group[n_test + n_val:]
    for name, part in splits.items():
        rng.shuffle(part)
        with (HERE / f"{name}.jsonl").open("w", encoding="utf-8") as fh:
            for row in part:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        counts = {i: sum(r["intent"] == i for r in part) for i in sorted(by_intent)}
        print(f"{name}: {len(part)} {counts}")


if __name__ == "__main__":
    main()
