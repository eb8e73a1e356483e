#!/usr/bin/env python3
"""Generates the bucketing golden vectors from an independent reference.

The expected values come from the `mmh3` package (a C murmur3), not from Flagpole's Rust
code, so `tests/golden.rs` checks our implementation against a second one. Any other SDK
should load the two JSON files and check itself the same way (see README.md).

    pip install mmh3
    python3 generate.py          # rewrites bucketing.json and rollouts.json
    python3 generate.py --check  # exits 1 if the committed files differ

Generated once and committed. Everything here is deterministic (fixed lists and a seeded
PRNG); regenerating must not change a single vector. If it would, bucketing has changed,
which moves users between variants in every running rollout: don't.
"""

import json
import random
import sys
from decimal import Decimal
from pathlib import Path

import mmh3

TOTAL_WEIGHT = 100_000
SEPARATOR = b":"
HERE = Path(__file__).resolve().parent


# --- the algorithm -------------------------------------------------------------------


def hash_input(salt: str, value: str) -> bytes:
    """The exact bytes hashed: UTF-8(salt) ++ b":" ++ UTF-8(value)."""
    return salt.encode("utf-8") + SEPARATOR + value.encode("utf-8")


def murmur3(data: bytes) -> int:
    """murmur3 x86_32, seed 0, as an unsigned 32-bit integer."""
    return mmh3.hash(data, 0, signed=False)


def bucket_of_hash(h: int) -> int:
    """[0, 2^32) -> [0, 100000) by multiply-shift."""
    return (h * TOTAL_WEIGHT) >> 32


def bucket(salt: str, value: str) -> int:
    return bucket_of_hash(murmur3(hash_input(salt, value)))


def ryu_text(f: float) -> str:
    """A float as Rust's `ryu` crate writes it (also what serde_json writes).

    The digits are the shortest that round-trip (Python's repr finds the same ones); only
    the layout differs from repr: no `+` and no zero padding in exponents, decimal notation
    for 1e-5 <= |f| < 1e16, and always a `.0` on whole numbers in decimal notation.
    """
    if f != f or f in (float("inf"), float("-inf")):
        raise ValueError("JSON has no NaN or infinity")
    sign = "-" if str(f).startswith("-") else ""  # keeps -0.0
    if f == 0:
        return sign + "0.0"
    d = Decimal(repr(abs(f))).normalize()
    _, digit_tuple, k = d.as_tuple()
    digits = "".join(map(str, digit_tuple))
    length = len(digits)
    kk = length + k  # 10^(kk-1) <= |f| < 10^kk
    if 0 <= k and kk <= 16:
        body = digits + "0" * k + ".0"
    elif 0 < kk <= 16:
        body = digits[:kk] + "." + digits[kk:]
    elif -5 < kk <= 0:
        body = "0." + "0" * (-kk) + digits
    elif length == 1:
        body = digits + "e" + str(kk - 1)
    else:
        body = digits[0] + "." + digits[1:] + "e" + str(kk - 1)
    return sign + body


def bucketing_text(value):
    """The text a context attribute value is bucketed by, or None (MISSING_BUCKET_KEY)."""
    if isinstance(value, bool):  # before int: bool is an int in Python
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        # serde_json keeps integers that fit i64 or u64; larger ones become f64.
        if -(2**63) <= value < 2**64:
            return str(value)
        return ryu_text(float(value))
    if isinstance(value, float):
        return ryu_text(value)
    return None  # null, objects and arrays


def slices(weights):
    """[(exclusive upper bucket, variant)] in order, zero weights dropped."""
    out, total = [], 0
    for w in weights:
        total += w["weight"]
        if w["weight"] > 0:
            out.append((total, w["variant"]))
    assert total == TOTAL_WEIGHT, weights
    return out


# --- bucketing.json ------------------------------------------------------------------


def vector(salt: str, value: str) -> dict:
    data = hash_input(salt, value)
    h = murmur3(data)
    return {
        "salt": salt,
        "value": value,
        "input_hex": data.hex(),
        "hash": h,
        "bucket": bucket_of_hash(h),
    }


def bucketing_vectors():
    pairs = []
    add = pairs.append

    # Every murmur3 tail length (input length mod 4), from the empty value up.
    alphabet = "abcdefghijklmnop"
    for n in range(len(alphabet) + 1):
        add(("flag", alphabet[:n]))

    # Ordinary targeting keys under one flag.
    for i in range(30):
        add(("new-checkout", f"user-{i}"))

    # One value under many salts (flag keys may use letters, digits, `-`, `_`, `.`).
    for salt in [
        "a",
        "ab",
        "abc",
        "abcd",
        "new-checkout",
        "new_checkout",
        "New-Checkout",
        "checkout.v2",
        "Flag_Key-9",
        "2024-q3-pricing",
        "k" * 200,  # the longest flag key
        "salt with spaces and: a colon",  # a custom salt may hold anything
    ]:
        add((salt, "user-42"))

    # The empty value.
    for salt in ["new-checkout", "a", "pricing", "k" * 200, "ü"]:  # ("flag", "") is above
        add((salt, ""))

    # Unicode values: 2-, 3- and 4-byte UTF-8, combining marks, ZWJ sequences, RTL text.
    for value in [
        "é",
        "ünïcödé-user",
        "Ωμέγα",
        "пользователь-7",
        "日本語ユーザー",
        "사용자",
        "ผู้ใช้",
        "مستخدم",
        "משתמש",
        "उपयोगकर्ता",
        "🚀",
        "user-🚀-1",
        "👩‍💻",  # woman + ZWJ + laptop
        "🇳🇴",  # regional indicators
        "👍🏽",  # skin-tone modifier
        "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",  # mathematical fraktur, 4 bytes each
        "café",  # NFC: U+00E9
        "cafe\u0301",  # NFD: e + U+0301; different bytes, so a different bucket
        "\ufeffbom",
        "\ufffd",
        "line\u2028separator",
    ]:
        add(("new-checkout", value))
    for salt in ["ünïcödé", "日本", "🚀", "flag-🎉"]:
        add((salt, "user-1"))

    # Long values: total input of 255, 256 and 257 bytes (the stack/heap boundary in
    # hash_salted), and well beyond, including multi-byte characters.
    for n in [250, 251, 252, 253, 300, 1000, 2048]:
        add(("flag", "x" * n))  # 5 + n bytes
    for n in [55, 56, 57]:
        add(("k" * 200, "v" * n))  # 201 + n bytes
    add(("flag", "é" * 200))  # 400 bytes of value
    add(("flag", "🚀" * 70))  # 280 bytes of value
    add(("new-checkout", "org-" + "0123456789" * 30))
    add(("🚀" * 64, "user-1"))  # a 256-byte salt

    # Numbers and booleans as the engine writes them (see README.md).
    for value in [
        "0",
        "1",
        "-1",
        "7",
        "42",
        "042",
        "100",
        "1000000",
        "9007199254740993",
        "9223372036854775807",
        "-9223372036854775808",
        "18446744073709551615",
        "0.0",
        "-0.0",
        "1.0",
        "1.5",
        "0.1",
        "3.14159",
        "42.0",
        "1e16",
        "1e21",
        "1.5e-7",
        "0.00001",
        "1e-6",
        "true",
        "false",
    ]:
        add(("org-rollout", value))

    # Characters that need care in JSON or in other languages' strings.
    for value in [
        " ",
        "user 1",
        " user-1",
        "user-1 ",
        "tab\there",
        "new\nline",
        "nul\u0000byte",
        '"quoted"',
        "back\\slash",
        "a:b",
        ":",
        "::",
        "User-1",
        "USER-1",
    ]:
        add(("new-checkout", value))
    # No escaping: ("a:b", "c") and ("a", "b:c") hash the same bytes.
    add(("a:b", "c"))
    add(("a", "b:c"))

    # Seeded pseudo-random keys of the shapes seen in practice.
    rng = random.Random(20240617)
    hexd = "0123456789abcdef"
    for _ in range(20):
        u = "".join(rng.choice(hexd) for _ in range(32))
        add(("checkout.v2", f"{u[:8]}-{u[8:12]}-4{u[13:16]}-a{u[17:20]}-{u[20:]}"))
    for _ in range(10):
        name = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 12)))
        add(("beta-banner", f"{name}@example.com"))
    for _ in range(10):
        add(("search-ranking", str(rng.randrange(10**12))))
    printable = [chr(c) for c in range(0x20, 0x7F)]
    for _ in range(10):
        value = "".join(rng.choice(printable) for _ in range(rng.randint(1, 40)))
        add(("fuzz", value))
    for _ in range(3):  # any Unicode scalar value, surrogates excluded
        value = "".join(
            chr(rng.choice([rng.randrange(0x80, 0xD800), rng.randrange(0xE000, 0x110000)]))
            for _ in range(rng.randint(1, 8))
        )
        add(("fuzz", value))

    # The extremes of the bucket range, found by search.
    found = {}
    i = 0
    while len(found) < 2:
        value = f"edge-{i}"
        b = bucket("edges", value)
        if b in (0, TOTAL_WEIGHT - 1) and b not in found:
            found[b] = value
        i += 1
    add(("edges", found[0]))
    add(("edges", found[TOTAL_WEIGHT - 1]))

    assert len(set(pairs)) == len(pairs), "duplicate vector"
    return [vector(s, v) for s, v in pairs]


# --- rollouts.json -------------------------------------------------------------------


def rollout_case(name, flag_key, weights, context, bucket_by="", salt=""):
    effective_salt = salt or flag_key
    case = {"name": name, "flag_key": flag_key}
    if salt:
        case["salt"] = salt
    if bucket_by:
        case["bucket_by"] = bucket_by
    case["weights"] = weights
    case["context"] = context

    sl = slices(weights)
    if len(sl) == 1:
        case["expected"] = {"variant": sl[0][1]}  # 100% to one variant: no bucketing
        return case
    if bucket_by in ("", "key"):
        raw = context.get("key", "")
        text = raw if raw else None
    else:
        raw = lookup(context.get("attributes", {}), bucket_by)
        text = None if raw is None else bucketing_text(raw)
    if text is None:
        case["expected"] = {"error": "MISSING_BUCKET_KEY"}
        return case
    data = hash_input(effective_salt, text)
    h = murmur3(data)
    b = bucket_of_hash(h)
    variant = next(v for upper, v in sl if b < upper)
    case["expected"] = {
        "bucketing_text": text,
        "input_hex": data.hex(),
        "hash": h,
        "bucket": b,
        "variant": variant,
    }
    return case


def lookup(attributes, bucket_by):
    """A top-level attribute, or a JSON pointer (`/org/id`)."""
    if not bucket_by.startswith("/"):
        return attributes.get(bucket_by)
    tokens = [t.replace("~1", "/").replace("~0", "~") for t in bucket_by[1:].split("/")]
    current = attributes.get(tokens[0])
    for t in tokens[1:]:
        if isinstance(current, dict):
            current = current.get(t)
        elif isinstance(current, list) and t.isdigit() and int(t) < len(current):
            current = current[int(t)]
        else:
            return None
    return current


def w(*pairs):
    return [{"variant": v, "weight": n} for v, n in pairs]


def rollout_vectors():
    cases = []
    ten = w(("on", 10_000), ("off", 90_000))

    # A 10% rollout: the first few keys in and out.
    ins, outs, i = [], [], 0
    while len(ins) < 3 or len(outs) < 3:
        key = f"user-{i}"
        (ins if bucket("new-checkout", key) < 10_000 else outs).append(key)
        i += 1
    for key in ins[:3] + outs[:3]:
        cases.append(rollout_case(f"10% rollout, {key}", "new-checkout", ten, {"key": key}))

    # A three-way split, and the same flag re-randomised by a custom salt.
    split = w(("control", 33_333), ("a", 33_333), ("b", 33_334))
    for key in ["user-1", "user-2", "user-3", "user-4", "user-5", "user-6"]:
        cases.append(rollout_case(f"3-way split, {key}", "pricing-page", split, {"key": key}))
        cases.append(
            rollout_case(
                f"3-way split, salted, {key}",
                "pricing-page",
                split,
                {"key": key},
                salt="pricing-page-2024",
            )
        )

    # Zero-weight slices are skipped.
    zero = w(("a", 0), ("b", 50_000), ("c", 0), ("d", 50_000))
    low, high, i = [], [], 0
    while len(low) < 2 or len(high) < 2:
        key = f"user-{i}"
        (low if bucket("zeros", key) < 50_000 else high).append(key)
        i += 1
    for key in low[:2] + high[:2]:
        cases.append(rollout_case(f"zero-weight slices, {key}", "zeros", zero, {"key": key}))

    # Slice bounds are exclusive: a bucket equal to a slice's upper bound is in the next.
    for key in ["boundary-a", "boundary-b"]:
        b = bucket("bounds", key)
        cases.append(
            rollout_case(
                f"bucket == upper bound, {key}",
                "bounds",
                w(("first", b), ("second", TOTAL_WEIGHT - b)),
                {"key": key},
            )
        )
        cases.append(
            rollout_case(
                f"bucket == upper bound - 1, {key}",
                "bounds",
                w(("first", b + 1), ("second", TOTAL_WEIGHT - b - 1)),
                {"key": key},
            )
        )

    # Unicode and long keys.
    for i, key in enumerate(["日本語ユーザー", "👩‍💻", "x" * 300]):
        cases.append(rollout_case(f"non-ASCII or long key {i}", "new-checkout", ten, {"key": key}))

    # bucket_by a non-key attribute: strings, integers, floats, booleans, nested values.
    half = w(("on", 50_000), ("off", 50_000))
    for value in [
        "acme",
        "42",
        42,
        -7,
        0,
        9223372036854775807,
        -9223372036854775808,
        18446744073709551615,
        18446744073709551616,  # beyond u64: serde_json reads it as a float
        1.5,
        42.0,
        -0.0,
        0.1,
        1e16,
        123456789.125,
        1e21,
        1.5e-7,
        0.00001,
        1e-6,
        True,
        False,
        # Full-precision floats: the JSON parser must round correctly to get these back
        # (serde_json's default fast parser returns a neighbouring float for both).
        95195602.84026389,
        1.5860846119992697e-265,
    ]:
        cases.append(
            rollout_case(
                f"bucket_by org_id = {json.dumps(value)}",
                "org-rollout",
                half,
                {"key": "user-1", "attributes": {"org_id": value}},
                bucket_by="org_id",
            )
        )
    cases.append(
        rollout_case(
            "bucket_by a JSON pointer",
            "org-rollout",
            half,
            {"key": "user-1", "attributes": {"org": {"id": 1234, "name": "acme"}}},
            bucket_by="/org/id",
        )
    )
    cases.append(
        rollout_case(
            "bucket_by key explicitly",
            "org-rollout",
            half,
            {"key": "user-1", "attributes": {"org_id": 42}},
            bucket_by="key",
        )
    )

    # No bucketing value: the caller's default is served.
    for name, ctx in [
        ("attribute missing", {"key": "user-1"}),
        ("attribute null", {"key": "user-1", "attributes": {"org_id": None}}),
        ("attribute is an object", {"key": "user-1", "attributes": {"org_id": {"id": 1}}}),
        ("attribute is an array", {"key": "user-1", "attributes": {"org_id": [1]}}),
    ]:
        cases.append(rollout_case(name, "org-rollout", half, ctx, bucket_by="org_id"))
    cases.append(rollout_case("empty targeting key", "new-checkout", ten, {"key": ""}))
    cases.append(
        rollout_case(
            "100% to one variant needs no bucketing value",
            "new-checkout",
            w(("on", 100_000), ("off", 0)),
            {"key": ""},
        )
    )
    return cases


# --- output --------------------------------------------------------------------------


def render(items) -> str:
    lines = [json.dumps(item, ensure_ascii=False) for item in items]
    return "[\n  " + ",\n  ".join(lines) + "\n]\n"


def main() -> int:
    outputs = {
        HERE / "bucketing.json": render(bucketing_vectors()),
        HERE / "rollouts.json": render(rollout_vectors()),
    }
    if "--check" in sys.argv[1:]:
        stale = [p.name for p, text in outputs.items() if p.read_text("utf-8") != text]
        for name in stale:
            print(f"{name} differs from what generate.py produces", file=sys.stderr)
        return 1 if stale else 0
    for path, text in outputs.items():
        path.write_text(text, "utf-8")
        print(f"wrote {path.name}: {text.count(chr(10)) - 2} entries")
    return 0


if __name__ == "__main__":
    sys.exit(main())
