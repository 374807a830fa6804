# tests/preload/programs/workload.py — allocation-heavy Python for the preload suite.
#
# How it works: builds dicts, lists, a small class hierarchy and nested JSON, round-trips the JSON,
# sorts 200,000 items by a computed key and folds every result into a SHA-256 checksum that it
# prints along with a few totals. Everything is derived from a fixed linear congruential generator,
# so the output is the same on every run; the suite compares it between a plain and a preloaded
# run and also checks the totals that can be known in advance.
import hashlib
import json
import sys


class LCG:
    """A 64-bit linear congruential generator: the same numbers on every run."""

    def __init__(self, seed):
        self.state = seed

    def next(self):
        self.state = (self.state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        return self.state >> 33


class Shape:
    def __init__(self, name):
        self.name = name
        self.tags = [name[:1], name[-1:]]

    def area(self):
        raise NotImplementedError


class Rect(Shape):
    def __init__(self, w, h):
        super().__init__("rect")
        self.w, self.h = w, h

    def area(self):
        return self.w * self.h


class Square(Rect):
    def __init__(self, s):
        super().__init__(s, s)
        self.name = "square"


class Tri(Shape):
    def __init__(self, b, h):
        super().__init__("tri")
        self.b, self.h = b, h

    def area(self):
        return self.b * self.h // 2


def main():
    rng = LCG(42)
    digest = hashlib.sha256()

    # Dicts and lists of strings.
    words = {}
    for i in range(100_000):
        key = "w%d" % (rng.next() % 50_000)
        words.setdefault(key, []).append(i)
    digest.update(repr(sorted((k, len(v)) for k, v in words.items())).encode())

    # A class hierarchy: many small objects, virtual calls, then most of them dropped.
    shapes = []
    for i in range(60_000):
        r = rng.next() % 3
        if r == 0:
            shapes.append(Rect(rng.next() % 100, rng.next() % 100))
        elif r == 1:
            shapes.append(Square(rng.next() % 100))
        else:
            shapes.append(Tri(rng.next() % 100, rng.next() % 100))
    total_area = sum(s.area() for s in shapes)
    by_kind = {}
    for s in shapes:
        by_kind[s.name] = by_kind.get(s.name, 0) + 1
    shapes = shapes[::10]
    digest.update(str(total_area).encode())

    # A JSON round trip of nested data.
    doc = {
        "items": [
            {"id": i, "name": "item-%d" % i, "values": [rng.next() % 1000 for _ in range(8)]}
            for i in range(20_000)
        ],
        "meta": {"kinds": by_kind, "kept": len(shapes)},
    }
    text = json.dumps(doc, sort_keys=True)
    back = json.loads(text)
    assert back == doc, "JSON round trip changed the document"
    digest.update(text.encode())

    # Sorting 200,000 items by a computed key.
    items = [(rng.next() % 1_000_000, "s%d" % i) for i in range(200_000)]
    items.sort(key=lambda t: (t[0] % 977, t[0], t[1]))
    digest.update(repr(items[:1000]).encode())
    digest.update(repr(items[-1000:]).encode())

    print("distinct words:", len(words))
    print("shapes kept:", len(shapes))
    print("json items:", len(back["items"]))
    print("sorted items:", len(items))
    print("checksum:", digest.hexdigest())
    return 0


if __name__ == "__main__":
    sys.exit(main())
