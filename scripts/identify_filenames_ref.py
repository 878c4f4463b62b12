#!/usr/bin/env python3
"""The file bulk_extractor's identify_filenames.py assigns to each line of a
feature file, from fiwalk's DFXML: the reference of trawl's
features/annotated/NAME.txt in the tests.

Usage: identify_filenames_ref.py FIWALK.xml FEATURES.txt
Prints one JSON line per feature line: [forensic path, filename or null,
md5 or null]. identify_filenames' rules, reimplemented (it needs dfxml.py,
which Debian does not package): every fileobject's byte runs (those with an
img_offset) go into two sorted databases, allocated files and the others;
the offset is the forensic path's leading number (plus the XOR offset for
`N-XOR-M`); a lookup takes the run starting at the offset, else the run
with the largest start below it if that run holds the offset; allocated
first, then the others; an unallocated file's name gets a leading '*'."""
import bisect
import json
import re
import sys
import xml.etree.ElementTree as ET


def local(tag):
    return tag.rsplit('}', 1)[-1]


class Db:
    def __init__(self):
        self.runs = []

    def add(self, start, length, info):
        self.runs.append((start, start + length, info))

    def done(self):
        self.runs.sort(key=lambda r: (r[0], r[1]))
        self.starts = [r[0] for r in self.runs]

    def search(self, pos):
        p = bisect.bisect_left(self.starts, pos)
        if p < len(self.runs) and self.runs[p][0] == pos:
            return self.runs[p]
        if p == 0:
            return None
        r = self.runs[p - 1]
        return r if r[0] <= pos < r[1] else None


def load(xml):
    alloc_db, unalloc_db = Db(), Db()
    for fo in ET.parse(xml).getroot().iter():
        if local(fo.tag) != 'fileobject':
            continue
        name, md5, alloc, runs = '', '', False, []
        for c in fo:
            t = local(c.tag)
            if t == 'filename':
                name = c.text or ''
            elif t == 'alloc':
                alloc = (c.text or '').strip() == '1'
            elif t == 'hashdigest' and c.get('type', '').lower() == 'md5':
                md5 = c.text or ''
            elif t == 'byte_runs':
                for r in c:
                    if r.get('img_offset') is not None and r.get('len') is not None:
                        runs.append((int(r.get('img_offset')), int(r.get('len'))))
        if name == '$OrphanFiles':
            alloc = False
        db = alloc_db if alloc else unalloc_db
        info = (name if alloc else '*' + name, md5)
        for (o, n) in runs:
            db.add(o, n, info)
    alloc_db.done()
    unalloc_db.done()
    return alloc_db, unalloc_db


XOR = re.compile(r'^(\d+)-XOR-(\d+)')


def offset_of(path):
    m = XOR.search(path)
    if m:
        return int(m.group(1)) + int(m.group(2))
    return int(path.split('-', 1)[0])


def main(xml, features):
    a, u = load(xml)
    with open(features, 'rb') as f:
        for line in f:
            if line.startswith(b'#'):
                continue
            path = line.rstrip(b'\n').split(b'\t')[0].decode('utf-8', 'replace')
            pos = offset_of(path)
            r = a.search(pos) or u.search(pos)
            print(json.dumps([path, r[2][0] if r else None, r[2][1] if r else None]))


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])
