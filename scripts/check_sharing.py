#!/usr/bin/env python3
"""Checks trawl's sharing exports with the reference tools (issue 22).

    target/tools-venv/bin/python scripts/check_sharing.py stix BUNDLE.json...
    target/tools-venv/bin/python scripts/check_sharing.py misp EVENT.json...
    target/tools-venv/bin/python scripts/check_sharing.py feed FEED_DIR...

stix: stix2-validator (default options) reports no error; every
      cyber-observable's id is the one the stix2 library derives from its
      properties.
misp: PyMISP loads the event; every attribute's (category, type) pair is in
      PyMISP's describeTypes.json; misp-stix converts the event to STIX 2.1
      without error and stix2-validator accepts that bundle.
feed: manifest.json names exactly the event files <uuid>.json, its entries
      equal the events' headers; hashes.csv holds md5(value),uuid for every
      attribute and nothing else; every event passes the misp checks.

Exits 1 with a message naming the file and the failure on the first problem;
prints one summary line on success. scripts/setup.sh installs the tools.
"""

import hashlib
import json
import os
import sys

try:
    import pymisp
    import stix2
    import stix2validator
    from misp_stix_converter import MISPtoSTIX21Parser
except ImportError as e:  # pragma: no cover - environment problem
    sys.exit(f"check_sharing: {e}: run scripts/setup.sh (stix2-validator, pymisp, misp-stix)")

SCO_TYPES = {"domain-name", "url", "ipv4-addr", "ipv6-addr", "email-addr", "file"}
MANIFEST_KEYS = ["info", "date", "analysis", "threat_level_id", "timestamp", "Orgc", "Tag"]


class Failure(Exception):
    pass


def describe_types():
    path = os.path.join(os.path.dirname(pymisp.__file__), "data", "describeTypes.json")
    with open(path, encoding="utf-8") as f:
        return json.load(f)["result"]["category_type_mappings"]


def validate_stix_text(text, where, quiet=False):
    """stix2-validator with its default options: errors fail; warnings are
    printed (quiet: counted by code, for bundles another tool wrote)."""
    results = stix2validator.validate_string(text, stix2validator.ValidationOptions())
    if not isinstance(results, list):
        results = [results]
    msgs = []
    codes = {}
    for r in results:
        for w in r.warnings or []:
            if quiet:
                code = str(w).split("}")[0].split("{")[-1] if "{" in str(w) else "?"
                codes[code] = codes.get(code, 0) + 1
            else:
                print(f"{where}: warning: {w}")
        if not r.is_valid:
            msgs.extend(f"{r.object_id}: {e}" for e in (r.errors or ["invalid"]))
    if codes:
        summary = ", ".join(f"{{{c}}} x{n}" for c, n in sorted(codes.items()))
        print(f"{where}: stix2-validator warnings: {summary}")
    if msgs:
        raise Failure(f"{where}: stix2-validator: " + "; ".join(msgs))


def check_stix(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    validate_stix_text(text, path)
    bundle = json.loads(text)
    scos = 0
    for obj in bundle.get("objects", []):
        if obj.get("type") not in SCO_TYPES:
            continue
        props = {k: v for k, v in obj.items() if k not in ("id", "type")}
        cls = stix2.v21.OBJ_MAP_OBSERVABLE[obj["type"]]
        want = cls(**props).id
        if want != obj["id"]:
            raise Failure(f"{path}: {obj['id']}: the stix2 library derives {want}")
        scos += 1
    return len(bundle.get("objects", [])), scos


def check_event_json(event_json, where, mappings):
    event = pymisp.MISPEvent()
    event.load(json.dumps(event_json))
    if not event.uuid:
        raise Failure(f"{where}: PyMISP loaded an event without uuid")
    attrs = event_json["Event"].get("Attribute", [])
    if len(event.attributes) != len(attrs):
        raise Failure(f"{where}: PyMISP loaded {len(event.attributes)} attributes of {len(attrs)}")
    for a in attrs:
        if a["type"] not in mappings.get(a["category"], []):
            raise Failure(
                f"{where}: attribute {a.get('uuid')}: type {a['type']!r} is not in category "
                f"{a['category']!r} (describeTypes.json)"
            )
    for mine, loaded in zip(attrs, event.attributes):
        if str(loaded.value) != mine["value"] and loaded.type not in ("ip-dst",):
            raise Failure(f"{where}: attribute {mine['uuid']}: PyMISP reads {loaded.value!r}, not {mine['value']!r}")
    parser = MISPtoSTIX21Parser()
    parser.parse_misp_event(event_json)
    errors = {k: v for k, v in (parser.errors or {}).items() if v}
    if errors:
        raise Failure(f"{where}: misp-stix: {errors}")
    warnings = sorted({w for v in (parser.warnings or {}).values() for w in v})
    if warnings:
        print(f"{where}: misp-stix warnings: {'; '.join(warnings)}")
    validate_stix_text(parser.bundle.serialize(), f"{where} (converted by misp-stix)", quiet=True)
    return len(attrs)


def load_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise Failure(f"{path}: {e}")


def check_misp(path, mappings):
    return check_event_json(load_json(path), path, mappings)


def check_feed(d, mappings):
    manifest = load_json(os.path.join(d, "manifest.json"))
    names = sorted(os.listdir(d))
    events = sorted(n for n in names if n.endswith(".json") and n != "manifest.json")
    extra = [n for n in names if n not in events and n not in ("manifest.json", "hashes.csv")]
    if extra:
        raise Failure(f"{d}: unexpected files {extra}")
    if sorted(f"{u}.json" for u in manifest) != events:
        raise Failure(f"{d}: manifest.json names {sorted(manifest)}, the event files are {events}")
    want_hashes = []
    attributes = 0
    for name in events:
        path = os.path.join(d, name)
        ev = load_json(path)
        uuid = name[: -len(".json")]
        if ev["Event"]["uuid"] != uuid:
            raise Failure(f"{path}: the event's uuid is {ev['Event']['uuid']}")
        head = {k: ev["Event"][k] for k in MANIFEST_KEYS}
        if manifest[uuid] != head:
            raise Failure(f"{d}/manifest.json: entry {uuid} differs from the event's header {head}")
        attributes += check_event_json(ev, path, mappings)
        for a in ev["Event"].get("Attribute", []):
            want_hashes.append(f"{hashlib.md5(a['value'].encode('utf-8')).hexdigest()},{uuid}")
    with open(os.path.join(d, "hashes.csv"), encoding="utf-8") as f:
        got = f.read().splitlines()
    if sorted(got) != sorted(want_hashes):
        raise Failure(f"{d}/hashes.csv: {len(got)} rows, want md5(value),uuid for the {len(want_hashes)} attributes")
    return len(events), attributes


def main(argv):
    if len(argv) < 3 or argv[1] not in ("stix", "misp", "feed"):
        print(__doc__, file=sys.stderr)
        return 2
    kind, paths = argv[1], argv[2:]
    try:
        if kind == "stix":
            objs = scos = 0
            for p in paths:
                o, s = check_stix(p)
                objs, scos = objs + o, scos + s
            print(f"check_sharing: stix: {len(paths)} bundle(s), {objs} objects ({scos} observables): valid")
        else:
            mappings = describe_types()
            if kind == "misp":
                n = sum(check_misp(p, mappings) for p in paths)
                print(f"check_sharing: misp: {len(paths)} event(s), {n} attributes: loaded, converted, valid")
            else:
                ev = at = 0
                for p in paths:
                    e, a = check_feed(p, mappings)
                    ev, at = ev + e, at + a
                print(f"check_sharing: feed: {len(paths)} feed(s), {ev} events, {at} attributes: consistent, valid")
    except Failure as e:
        print(f"check_sharing: error: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # a tool raising is a failure too, named
        print(f"check_sharing: error: {kind} {paths}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
