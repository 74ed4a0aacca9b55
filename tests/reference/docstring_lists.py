"""Reranking lists of real English text, offline: Python standard library docstrings.

    python tests/reference/docstring_lists.py --lists 200 --out lists.jsonl [--seed 7] \
        [--min-passages 20] [--max-passages 100]

Writes JSON Lines, one list per line, `["query", "passage", ...]` (the input of
`listconranker score`). The corpus is the docstring (`inspect.getdoc`) of every public function,
class and method of a fixed list of standard library modules (`MODULES`), at least 60
characters long, each text once. List `i`: a target object is drawn; the query is the first line
of its docstring, its dotted name, or its name's words (`"join path"` for `join_path`), in turn;
the passages are the target's docstring, docstrings of other objects of the same module (about a
third of the list, the related ones) and of objects of other modules, shuffled; the number of
passages is drawn between `--min-passages` and `--max-passages`. Passages are the docstrings as
they are (the model truncates them at 512 tokens).

Deterministic for one Python version (the docstrings are the interpreter's own; 3.11 made the
committed figures): the same arguments give the same file. Everything is drawn from
`random.Random(seed)`; list `i` uses `Random(seed * 1_000_003 + i)`, so the first lists do not
change with `--lists`.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import random
import re
import sys
import warnings
from pathlib import Path

MODULES = [
    "abc", "argparse", "array", "ast", "asyncio", "base64", "binascii", "bisect", "calendar",
    "cmath", "codecs", "collections", "colorsys", "concurrent.futures", "configparser",
    "contextlib", "copy", "csv", "dataclasses", "datetime", "decimal", "difflib", "dis", "doctest",
    "email.message", "email.utils", "enum", "filecmp", "fnmatch", "fractions", "ftplib",
    "functools", "gc", "getopt", "gettext", "glob", "graphlib", "gzip", "hashlib", "heapq", "hmac",
    "html", "html.parser", "http.client", "http.cookies", "imaplib", "importlib", "inspect", "io",
    "ipaddress", "itertools", "json", "keyword", "linecache", "locale", "logging", "lzma",
    "mailbox", "math", "mimetypes", "mmap", "multiprocessing", "netrc", "numbers", "operator",
    "optparse", "os", "os.path", "pathlib", "pickle", "pkgutil", "platform", "plistlib", "poplib",
    "pprint", "queue", "quopri", "random", "re", "reprlib", "sched", "secrets", "selectors",
    "shelve", "shlex", "shutil", "signal", "smtplib", "socket", "sqlite3", "ssl", "stat",
    "statistics", "string", "struct", "subprocess", "symtable", "sysconfig", "tarfile", "tempfile",
    "textwrap", "threading", "time", "timeit", "tokenize", "trace", "traceback", "tracemalloc",
    "typing", "unicodedata", "unittest", "urllib.parse", "urllib.request", "uuid", "warnings",
    "wave", "weakref", "xml.dom.minidom", "xml.etree.ElementTree", "zipfile", "zlib",
]
MIN_DOC_CHARS = 60


def _doc(obj) -> str | None:
    try:
        doc = inspect.getdoc(obj)
    except Exception:
        return None
    if not doc or len(doc) < MIN_DOC_CHARS:
        return None
    return doc


def corpus() -> list[dict]:
    """[{module, name, doc}] in a fixed order, each docstring once (its first owner)."""
    entries, seen = [], set()

    def add(module: str, name: str, obj) -> None:
        doc = _doc(obj)
        if doc is not None and doc not in seen:
            seen.add(doc)
            entries.append({"module": module, "name": name, "doc": doc})

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for module_name in MODULES:
            try:
                module = importlib.import_module(module_name)
            except ImportError:
                continue
            for attr in sorted(vars(module)):
                if attr.startswith("_"):
                    continue
                obj = vars(module)[attr]
                if not (inspect.isclass(obj) or inspect.isroutine(obj)):
                    continue
                home = getattr(obj, "__module__", None) or ""
                if home.lstrip("_") != module_name.lstrip("_") and not home.startswith(module_name):
                    # Re-exported from elsewhere: the module that defines it owns it.
                    continue
                add(module_name, f"{module_name}.{attr}", obj)
                if inspect.isclass(obj):
                    for member in sorted(vars(obj)):
                        if member.startswith("_"):
                            continue
                        value = vars(obj)[member]
                        if isinstance(value, (staticmethod, classmethod)):
                            value = value.__func__
                        if inspect.isroutine(value) or isinstance(value, property):
                            add(module_name, f"{module_name}.{attr}.{member}", value)
    return entries


def name_words(name: str) -> str:
    last = name.rsplit(".", 1)[-1]
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", last).replace("_", " ")
    return words.lower().strip()


def make_list(entries: list[dict], by_module: dict, rng: random.Random, lo: int, hi: int, i: int) -> list[str]:
    target = entries[rng.randrange(len(entries))]
    kind = i % 3
    if kind == 0:
        query = target["doc"].split("\n", 1)[0].strip()
    elif kind == 1:
        query = target["name"]
    else:
        query = name_words(target["name"]) or target["name"]
    n = rng.randint(lo, hi)
    related = [e for e in by_module[target["module"]] if e is not target]
    rng.shuffle(related)
    related = related[: min(len(related), n // 3)]
    chosen = {id(target)} | {id(e) for e in related}
    others = []
    while len(others) < n - 1 - len(related):
        e = entries[rng.randrange(len(entries))]
        if id(e) not in chosen:
            chosen.add(id(e))
            others.append(e)
    passages = [target["doc"]] + [e["doc"] for e in related + others]
    rng.shuffle(passages)
    return [query] + passages


def make_lists(count: int, seed: int, lo: int, hi: int) -> list[list[str]]:
    entries = corpus()
    by_module: dict[str, list[dict]] = {}
    for e in entries:
        by_module.setdefault(e["module"], []).append(e)
    return [make_list(entries, by_module, random.Random(seed * 1_000_003 + i), lo, hi, i) for i in range(count)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lists", type=int, default=200)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--min-passages", type=int, default=20)
    ap.add_argument("--max-passages", type=int, default=100)
    ap.add_argument("--out", type=Path, help="output file (default: standard output)")
    args = ap.parse_args()
    lists = make_lists(args.lists, args.seed, args.min_passages, args.max_passages)
    text = "".join(json.dumps(lst, ensure_ascii=False) + "\n" for lst in lists)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        passages = sum(len(lst) - 1 for lst in lists)
        print(f"{args.out}: {len(lists)} lists, {passages} passages (Python {sys.version.split()[0]})",
              file=sys.stderr)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
