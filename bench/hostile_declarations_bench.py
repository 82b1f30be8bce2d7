"""Benchmark: 1,000+ hostile declarations, each read in bounded time and memory (issue #17).

Generates declarations of eight kinds (``KINDS``): alias and merge-key expansion, deep nesting (to
depth 100,000), size (files over the 16 MiB limit, values and value counts at and past the limits),
odd keys, odd values, odd URLs, links out of the sets folder, and valid sets that must be accepted
(anchors, aliases and merge keys included; up to 100,000 targets). Each is written to a sets folder
and read with ``components.declare.declarations.load_sets``, the program's own entry, in a child
forked from a warm parent (imports and the schema loaded once), so that each document's figures
are its own:

- **seconds**: CPU and wall time of ``load_sets`` in the child. The bound is checked on CPU seconds,
  the work the document costs; wall seconds are printed too, with the load average: on this shared
  VM other engineers' runs stretch them (at load 12 on 2 cores, about 2.5 times the CPU seconds);
- **peak RSS**: the child's ``ru_maxrss``, which includes the warm parent it was forked from
  (about 50 MB: Python, PyYAML, jsonschema, the program's modules): conservative;
- **outcome**: accepted, or problems. Every problem must name the file, be located (a line, or a
  JSON path, or be about the file as a whole: its size, a link), be readable (at most 1,000
  characters) and never show the password planted in URLs' userinfo. A valid set must be accepted,
  a hostile one refused, and nothing may raise anything but DeclarationError.

Bounds (issue #17's acceptance): each document ends in at most 2 s with at most 200 MB peak RSS.
The run exits 1 if any document breaks a bound or a check.

    venv/bin/python bench/hostile_declarations_bench.py                 # 1,200 documents, 2-5 minutes
    venv/bin/python bench/hostile_declarations_bench.py --count 200 --seed 3

This is a benchmark, not a test: the suite runs a smaller sample (tests/test_hostile_declarations.py,
and the extreme cases in a child process in tests/test_declarations.py).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import select
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.report import machine, speed_probe  # noqa: E402
from components.declare.yaml_source import MAX_VALUES  # noqa: E402

MAX_SECONDS = 2.0
MAX_RSS_MB = 200.0
READABLE = 1_000  # characters of one problem, file and location included
PASSWORD = "hunter2-pw"
CHILD_TIMEOUT = 60.0

VALID, REFUSED, EITHER = "valid", "refused", "either"
HEAD = "provider: edgeone\nzone: zone-abc123\n"
TARGET = "targets: [https://a.example.com/x]\n"


@dataclass
class Doc:
    kind: str
    what: str
    text: str
    expect: str  # VALID, REFUSED or EITHER
    link: bool = False  # the file is a link to the text outside the sets folder


# -- generators: each returns one Doc ------------------------------------------------------------------


def expansion(rng: random.Random) -> Doc:
    shape = rng.choice(["alias chain", "merge chain", "wide alias", "recursive", "aliased lists", "small aliases"])
    if shape == "alias chain":
        levels, fan = rng.randint(4, 14), rng.randint(4, 16)
        key = rng.choice(["headers", "targets", "colour", "description", "destinations"])
        lines = [f"{key}: &a0 [{', '.join(['x'] * fan)}]"]
        lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * fan)}]" for i in range(1, levels)]
        return Doc("expansion", f"{levels} levels of {fan} aliases under {key}", HEAD + "\n".join(lines) + "\n",
                   REFUSED)
    if shape == "merge chain":
        levels, fan = rng.randint(4, 14), rng.randint(4, 16)
        lines = [f"m0: &m0 {{{', '.join(f'k{i}: {i}' for i in range(fan))}}}"]
        lines += [f"m{i}: &m{i} {{<<: [{', '.join([f'*m{i - 1}'] * fan)}]}}" for i in range(1, levels)]
        return Doc("expansion", f"{levels} levels of {fan} merge keys", HEAD + TARGET + "\n".join(lines) + "\n",
                   REFUSED)
    if shape == "wide alias":
        items, count = rng.randint(50, 2_000), rng.randint(100, 5_000)
        return Doc("expansion", f"a list of {items} repeated {count} times",
                   HEAD + TARGET + f"a: &big [{', '.join(['1'] * items)}]\nb: [{', '.join(['*big'] * count)}]\n",
                   REFUSED)
    if shape == "recursive":
        body = rng.choice(["targets: &r [https://a.example.com/, *r]", "headers: &r {a: *r}",
                           "destinations: &r [{provider: edgeone, zone: zone-a, x: *r}]", "&r [*r]",
                           "colour: &r {<<: *r}"])
        return Doc("expansion", f"recursive alias: {body[:40]}", HEAD + body + "\n", REFUSED)
    if shape == "aliased lists":
        count = rng.randint(11, 20_000)
        return Doc("expansion", f"one destination aliased {count} times",
                   TARGET + "destinations:\n  - &d {provider: tencent-cdn, area: mainland}\n" + "  - *d\n" * count,
                   REFUSED)
    count = rng.randint(1, 8)  # a few small aliases of a header: fine, but headers do not apply to EdgeOne
    return Doc("expansion", f"{count} small aliases", HEAD + TARGET + "headers:\n  - &h {name: X-A, value: '1'}\n"
               + "  - *h\n" * count, REFUSED)


def depth(rng: random.Random) -> Doc:
    level = int(10 ** rng.uniform(1.8, 5))  # 63 to 100,000
    shape = rng.choice(["flow list", "flow map", "mixed", "block list", "block map", "top block list"])
    if shape == "flow list":
        body = "headers: " + "[" * level + "]" * level
    elif shape == "flow map":
        body = "colour: " + "{a: " * level + "1" + "}" * level
    elif shape == "mixed":
        body = "destinations: " + "[{a: " * (level // 2) + "1" + "}]" * (level // 2)
    elif shape == "block list":
        level = min(level, 3_000)  # indentation grows with the depth: the file grows as its square
        body = "headers:\n" + "".join("  " * (i + 1) + "-\n" for i in range(level - 1)) + "  " * level + "- 1"
    elif shape == "block map":
        level = min(level, 3_000)
        body = "".join(" " * i + "a:\n" for i in range(level)) + " " * level + "1"
    else:
        return Doc("depth", f"{shape} {level:,} deep", "- " * level + "x\n", REFUSED)
    return Doc("depth", f"{shape} {level:,} deep", HEAD + TARGET + body + "\n", REFUSED)


# Spellings of valid targets that are not their normal form (RFC 3986): each is normalised on reading.
SPELLINGS = {"upper-case host": "HTTPS://Static.Example.COM/assets/{}.js",
             "percent-encoded letters": "https://a.example.com/%61ssets/{}.js",
             "dot segments": "https://a.example.com/a/../assets/{}.js"}


def size(rng: random.Random) -> Doc:
    shape = rng.choice(["over the file limit", "long description", "long key", "many values", "many keys",
                        "many headers", "many bad targets", "many globs", "many spellings", "many repeats"])
    if shape == "over the file limit":
        pad = 16 * 2**20 + rng.randint(1, 4 * 2**20)
        return Doc("size", f"{pad:,} bytes", HEAD + TARGET + "# " + "x" * pad + "\n", REFUSED)
    if shape == "long description":
        length = int(10 ** rng.uniform(3, 7.2))  # up to 15.8 million characters, under the 16 MiB limit
        return Doc("size", f"a description of {length:,} characters", HEAD + TARGET + "description: " + "d" * length
                   + "\n", REFUSED)
    if shape == "long key":
        length = int(10 ** rng.uniform(3, 7))
        return Doc("size", f"a key of {length:,} characters", HEAD + TARGET + "? " + "k" * length + "\n: 1\n", REFUSED)
    if shape == "many values":
        count = rng.choice([rng.randint(10_000, MAX_VALUES - 10), rng.randint(MAX_VALUES + 1, 400_000)])
        return Doc("size", f"a list of {count:,} numbers", HEAD + TARGET + "colour: [" + "1," * count + "1]\n",
                   REFUSED)
    if shape == "many keys":
        count = rng.randint(1_000, 90_000)
        return Doc("size", f"{count:,} unknown keys", HEAD + TARGET + "".join(f"k{i}: 1\n" for i in range(count)),
                   REFUSED)
    if shape == "many headers":
        count = rng.randint(21, 60_000)
        return Doc("size", f"{count:,} headers", "provider: tencent-cdn\n" + TARGET + "headers:\n"
                   + "  - {name: a, value: b}\n" * count, REFUSED)
    if shape == "many bad targets":
        count = rng.randint(100, MAX_VALUES - 10)
        bad = rng.choice(["ftp://a.example.com/x", "'https://a.example.com/x y'", "https://", "7"])
        return Doc("size", f"{count:,} bad targets ({bad})", HEAD + "targets:\n" + f"  - {bad}\n" * count, REFUSED)
    if shape in ("many spellings", "many repeats"):  # valid: each spelling is normalised, each repeat noted
        count = rng.randint(10_000, MAX_VALUES - 10)
        url = rng.choice(list(SPELLINGS.values())) if shape == "many spellings" else "https://a.example.com/x"
        what = next((name for name, form in SPELLINGS.items() if form == url), shape)
        return Doc("size", f"{count:,} targets: {what}", HEAD + "targets:\n" + "".join(
            f"  - {url.format(i)}\n" for i in range(count)), VALID)
    count = rng.randint(101, MAX_VALUES - 10)
    return Doc("size", f"{count:,} include globs", HEAD + "origin:\n  bucket: b\n  publicBaseUrl: https://c.example.com"
               "\n  include:\n" + "    - '*.js'\n" * count, REFUSED)


ODD_KEYS = ["? [a, b]\n: 1", "1: x", "null: x", "'\\u0000': 1", '"\\x01key": 1', "true: 1", "2026-01-01: 1",
            "? {a: 1}\n: 2", "'': 1", f"'https://u:{PASSWORD}@k.example.com/': 1",
            "Provider: edgeone", "targets : []", "PASSWORD: x", "secretAccessKey: abc", "<<: 5", "<<: [1, 2]",
            "=: 1", "? !!binary aGVsbG8=\n: 1", f"'//u:{PASSWORD}@k.example.com': 1", "'\\u202e': 1", "\"\\ud800\": 1", "? " + "k" * 5_000 + "\n: 1"]


def odd_keys(rng: random.Random) -> Doc:
    chosen = rng.sample(ODD_KEYS, rng.randint(1, 3))
    if rng.random() < 0.3:
        chosen.append("".join(rng.choice("aZ_-.$#@!%/é€😀\t ") for _ in range(rng.randint(1, 60))).strip() + ": 1")
    return Doc("odd keys", " | ".join(k[:30] for k in chosen), HEAD + TARGET + "\n".join(chosen) + "\n", EITHER)


ODD_VALUES = ["!!int abc", "!!bool maybe", "!!float x", "!!float ''", "!!timestamp 2026-99-99", "!!binary 'é'",
              "!!set {a}", "!!omap [a]", "!!python/object:os.system x", "!!python/name:os.system", "9" * 5_000,
              "0b" + "1" * 50_000, "0x" + "f" * 50_000, "1:00" * 20_000, ".inf", "-.nan", "1e400", "~",
              "2026-11-23", '"\\ud800"', '"\\x00\\x07\\x1b[31m"', "'" + "d" * 200_000 + "'",
              "[" + "1, " * 3_000 + "1]", "{" + ", ".join(f"k{i}: {i}" for i in range(3_000)) + "}",
              "!!str [1]", "!!map [1]", "!unknown x", "!<tag:yaml.org,2002:int> 1x", "&a !!int 12", "|\n  \x07text"]
ODD_VALUE_KEYS = ["description", "wait", "freshness", "revision", "preflight", "allowPartial", "pace", "safety",
                  "origin", "headers", "mode", "name", "zone", "onChange", "destinations", "colour"]
DURATIONS = ["99999999999999999999d", "366d", "8761h", "25h", "1441m", "3601s", "9" * 100_000 + "s",
             "0" * 100_000 + "1s", "365d", "24h", "1h", "0s", "1d1d", "1h30", "-1h", "1.5h"]


def odd_values(rng: random.Random) -> Doc:
    if rng.random() < 0.3:
        key = rng.choice(["wait", "freshness", "pace"])
        value = rng.choice(DURATIONS)
        line = f"pace: {{pause: '{value}'}}" if key == "pace" else f"{key}: '{value}'"
        return Doc("odd values", f"{key} {value[:30]}", HEAD + TARGET + line + "\n", EITHER)
    lines = [f"{rng.choice(ODD_VALUE_KEYS)}: {rng.choice(ODD_VALUES)}" for _ in range(rng.randint(1, 3))]
    return Doc("odd values", " | ".join(line[:40] for line in lines), HEAD + TARGET + "\n".join(lines) + "\n", EITHER)


# Refused whatever the URL rules become (whitespace, no host, not http(s)); the others are the URL rules' call.
REFUSED_URLS = [f"https://alice:{PASSWORD}@a.example.com/x y", f"ftp://alice:{PASSWORD}@a.example.com/",
                f"https://alice:{PASSWORD}@/x", "https://", "http:///x", "javascript:alert(1)", "//a.example.com/x"]
ODD_URLS = REFUSED_URLS + [
    f"https://:{PASSWORD}@a.example.com/", f"HTTPS://bob:{PASSWORD}@[::1", f"https://carol:{PASSWORD}@a.example.com:99999/",
    f"https://dave:{PASSWORD}@a.example.com/\x7f", "https://a.example.com/\x7f", "https://a.example.com/\u202e",
    "https://[::1", "https://a.example.com:99999/", "https://bücher.example/x", "https://" + "a" * 300 + ".com/",
    "https://a.example.com/" + "p" * 100_000, "https://a.example.com/%zz", "HTTPS://A.EXAMPLE.COM:443/../x",
    "https://a.example.com\\x", "https://a.example.com/#" + "f" * 5_000, "https://a.example.com/\x00",
    "https://a.example.com/%2e%2E/x", "https://xn--bcher-kva.example/x", "https://a.example.com:0/",
    "https://1.2.3.4/x", "https://[fe80::1%25eth0]/", "https://a.example.com/\t"]


def odd_urls(rng: random.Random) -> Doc:
    urls = rng.sample(ODD_URLS, rng.randint(1, 4))
    where = rng.choice(["targets", "publicBaseUrl", "endpoint"])
    if where == "targets":
        body = "targets: " + json.dumps(urls + ["https://a.example.com/ok"]) + "\n"
    else:
        other = "https://c.example.com" if where == "endpoint" else "https://c.example.com/ok"
        pair = {"publicBaseUrl": urls[0], "endpoint": other} if where == "publicBaseUrl" else {
            "publicBaseUrl": other, "endpoint": urls[0]}
        body = TARGET + "origin: " + json.dumps({"bucket": "b", **pair}) + "\n"
    refused = where == "targets" and any(u in REFUSED_URLS for u in urls)
    return Doc("odd URLs", f"{where}: " + " | ".join(repr(u[:40]) for u in urls), HEAD + body,
               REFUSED if refused else EITHER)


def link(rng: random.Random) -> Doc:
    return Doc("link", "a link to a set outside the sets folder", HEAD + TARGET, REFUSED, link=True)


def valid(rng: random.Random) -> Doc:
    targets = rng.choice([1, 10, 1_000, 10_000] + [100_000] * (rng.random() < 0.05))
    urls = "".join(f"  - https://static.example.com/assets/{i:06d}/chunk-{i * 7919 % 1_000_003:x}.js\n"
                   for i in range(targets))
    shape = rng.choice(["edgeone", "merged destinations", "aliases", "json"])
    extras = f"freshness: {rng.choice(['24h', '365d', '8760h', '90s'])}\nwait: {rng.choice(['0s', '24h', '10m'])}\n"
    if shape == "edgeone":
        text = HEAD + extras + "targets:\n" + urls
    elif shape == "merged destinations":
        text = ("destinations:\n  - &base {provider: tencent-cdn, area: mainland, userAgent: warmer/1}\n"
                "  - {<<: *base, area: overseas}\n  - <<: [{area: global}, *base]\n" + extras + "targets:\n" + urls)
    elif shape == "aliases":
        text = ("description: &d shared text\nrevision: *d\nprovider: tencent-cdn\nheaders:\n"
                "  - &h {name: X-A, value: '1'}\n  - {<<: *h, name: X-B}\n" + extras + "targets: &t\n" + urls)
    else:
        text = json.dumps({"provider": "ucloud", "domainId": "ucdn-abc", "pace": {"batchSize": 10, "pause": "1h"},
                           "targets": [f"https://u.example.com/{i}.js" for i in range(targets)]})
    return Doc("valid", f"{shape}, {targets:,} targets", text, VALID)


KINDS: dict[str, tuple[Callable[[random.Random], Doc], float]] = {
    "expansion": (expansion, 0.15), "depth": (depth, 0.13), "size": (size, 0.07), "odd keys": (odd_keys, 0.13),
    "odd values": (odd_values, 0.17), "odd URLs": (odd_urls, 0.15), "link": (link, 0.02), "valid": (valid, 0.18),
}


def documents(count: int, seed: int) -> list[tuple[str, int]]:
    """(kind, seed of the document) for ``count`` documents: each is generated again from its seed when
    it is run, so the parent never holds more than one document's text."""
    rng = random.Random(seed)
    kinds = [kind for kind, (_, share) in KINDS.items() for _ in range(math.ceil(count * share))]
    rng.shuffle(kinds)
    return [(kind, rng.randrange(2**32)) for kind in kinds]


# -- running one document in a forked child ------------------------------------------------------------


def child(folder: Path, doc: Doc) -> dict:
    """In the forked child: read the sets folder the way the program does; the figures and the checks."""
    from components.declare.declarations import load_sets
    from components.declare.model import DeclarationError

    wall, cpu = time.perf_counter(), time.process_time()
    try:
        load_sets(folder)
        problems = []
        raised = None
    except DeclarationError as error:
        problems = error.problems
        raised = None
    except BaseException as exc:  # noqa: BLE001 - what the bench is looking for
        problems, raised = [], f"{type(exc).__name__}: {str(exc)[:200]}"
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    failures = [] if raised is None else [f"raised {raised}"]
    if doc.expect == VALID and (problems or raised):
        failures.append(f"a valid set was refused: {str(problems[0])[:300] if problems else raised}")
    if doc.expect == REFUSED and not problems and raised is None:
        failures.append("a hostile set was accepted")
    for problem in problems:
        text = str(problem)
        located = problem.line is not None or problem.path or any(
            words in problem.message for words in ("larger than 16 MiB", "more problems than", "symbolic link"))
        if not Path(problem.file).name.startswith("set") or not located:
            failures.append(f"not located: {text[:300]}")
        if len(text) > READABLE:
            failures.append(f"{len(text):,} characters: {text[:200]}")
        if PASSWORD in text or "Traceback" in text:
            failures.append(f"shows a password or a traceback: {text[:300]}")
    return {"wall": wall, "cpu": cpu, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "accepted": not problems and raised is None, "problems": len(problems), "failures": failures,
            "first": str(problems[0])[:160] if problems else ""}


def run_one(folder: Path, outside: Path, doc: Doc) -> dict:
    for entry in folder.iterdir():
        entry.unlink()
    name = "set.json" if doc.text.startswith("{") else "set.yaml"
    if doc.link:
        (outside / name).write_text(doc.text, encoding="utf-8")
        (folder / name).symlink_to(outside / name)
    else:
        (folder / name).write_text(doc.text, encoding="utf-8")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report and leave without running the parent's cleanup
        os.close(read)
        try:
            out = json.dumps(child(folder, doc)).encode()
        except BaseException as exc:  # noqa: BLE001
            out = json.dumps({"failures": [f"bench child failed: {exc!r}"]}).encode()
        with os.fdopen(write, "wb") as pipe:
            pipe.write(out)
        os._exit(0)
    os.close(write)
    chunks, deadline = [], time.monotonic() + CHILD_TIMEOUT
    with os.fdopen(read, "rb") as pipe:
        while True:
            ready, _, _ = select.select([pipe], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return {"wall": CHILD_TIMEOUT, "cpu": 0.0, "rss_mb": 0.0, "accepted": False, "problems": 0,
                        "failures": [f"no answer in {CHILD_TIMEOUT:.0f} s"], "first": ""}
            chunk = os.read(pipe.fileno(), 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    if not chunks:
        return {"wall": 0.0, "cpu": 0.0, "rss_mb": 0.0, "accepted": False, "problems": 0,
                "failures": [f"the child died ({status:#x})"], "first": ""}
    return json.loads(b"".join(chunks))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_200)
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args()

    import jsonschema  # noqa: F401 - warm: the children inherit the imports

    from components.declare.declarations import load_sets

    work = Path(tempfile.mkdtemp(prefix="hostile-bench-"))
    folder, outside = work / "sets", work / "outside"
    folder.mkdir()
    outside.mkdir()
    (folder / "set.yaml").write_text(HEAD + TARGET, encoding="utf-8")
    load_sets(folder)  # the schema and the validator class, loaded once in the parent
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f}; speed probe {speed_probe():.2f} s")
    print(f"parent peak RSS before the documents: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    results: list[tuple[Doc, dict]] = []
    started = time.perf_counter()
    try:
        for kind, seed in documents(args.count, args.seed):
            doc = KINDS[kind][0](random.Random(seed))  # one document's text in memory at a time
            results.append((Doc(doc.kind, doc.what, "", doc.expect, doc.link), run_one(folder, outside, doc)))
            del doc
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{len(results):,} documents in {time.perf_counter() - started:.0f} s; load average "
          f"{os.getloadavg()[0]:.1f}; speed probe {speed_probe():.2f} s\n")
    print("| kind | documents | accepted | refused | max wall s | max CPU s | max peak RSS MB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for kind in [*KINDS, "all"]:
        rows = [r for d, r in results if kind in (d.kind, "all")]
        if rows:
            accepted = sum(r["accepted"] for r in rows)
            print(f"| {kind} | {len(rows):,} | {accepted:,} | {len(rows) - accepted:,} | "
                  f"{max(r['wall'] for r in rows):.2f} | {max(r['cpu'] for r in rows):.2f} | "
                  f"{max(r['rss_mb'] for r in rows):.0f} |")
    print("\nslowest (CPU):")
    for doc, r in sorted(results, key=lambda dr: -dr[1]["cpu"])[:6]:
        print(f"  {r['wall']:.2f} s wall, {r['cpu']:.2f} s CPU, {r['rss_mb']:.0f} MB: {doc.kind}: {doc.what}"
              f" -> {r['first'][:110] or 'accepted'}")
    print("largest (peak RSS):")
    for doc, r in sorted(results, key=lambda dr: -dr[1]["rss_mb"])[:3]:
        print(f"  {r['rss_mb']:.0f} MB, {r['wall']:.2f} s: {doc.kind}: {doc.what}")
    slow = sum(r["wall"] > MAX_SECONDS for _, r in results)
    print(f"wall over {MAX_SECONDS:.0f} s: {slow:,} documents (load average {os.getloadavg()[0]:.1f})")
    failed = [(d, r) for d, r in results if r["failures"] or r["cpu"] > MAX_SECONDS or r["rss_mb"] > MAX_RSS_MB]
    for doc, r in failed[:20]:
        why = r["failures"] or [f"{r['cpu']:.2f} s CPU, {r['rss_mb']:.0f} MB"]
        print(f"FAILED {doc.kind}: {doc.what}: {'; '.join(why)[:400]}")
    print(f"\n{len(results) - len(failed):,} of {len(results):,} documents within {MAX_SECONDS:.0f} s of CPU and "
          f"{MAX_RSS_MB:.0f} MB, every check passed" if not failed else f"\n{len(failed):,} documents FAILED")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
