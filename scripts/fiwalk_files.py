#!/usr/bin/env python3
"""Prints the file objects of a fiwalk DFXML file as JSON lines:
partition_offset, path, size, inode, alloc (true/false), type (name_type),
md5 (or null). Used by the tests that compare trawl's file listing with
fiwalk's (The Sleuth Kit)."""
import json
import sys
import xml.etree.ElementTree as ET


def local(tag):
    return tag.rsplit('}', 1)[-1]


def main(path):
    root = ET.parse(path).getroot()
    for vol in root.iter():
        if local(vol.tag) != 'volume':
            continue
        off = int(vol.get('offset', '0'))
        for fo in vol:
            if local(fo.tag) != 'fileobject':
                continue
            d = {'partition_offset': off, 'path': None, 'size': None, 'inode': None,
                 'alloc': False, 'type': None, 'md5': None}
            for c in fo:
                t = local(c.tag)
                if t == 'filename':
                    d['path'] = c.text or ''
                elif t == 'filesize':
                    d['size'] = int(c.text)
                elif t == 'inode':
                    d['inode'] = int(c.text)
                elif t == 'alloc':
                    d['alloc'] = c.text == '1'
                elif t == 'name_type':
                    d['type'] = c.text
                elif t == 'hashdigest' and c.get('type', '').lower() == 'md5':
                    d['md5'] = c.text
            print(json.dumps(d))


if __name__ == '__main__':
    main(sys.argv[1])
