#!/usr/bin/env python3
"""Builds the tree for the files-vs-fiwalk benchmark: 110,000 files (half
under 4 KiB, most under 40 KiB, 0.3% of 1-6 MiB; 2.4 GB) in 7,700 folders.
Then: mke2fs -q -F -t ext4 -d /work/fsbench/tree ext4.img 4G, and time
`trawl scan ext4.img --out o --analyses files` against
`fiwalk -X fw.xml ext4.img`, alternating (issue 19)."""
import os
import random
import sys

random.seed(19)
root = sys.argv[1] if len(sys.argv) > 1 else 'tree'
n = 0
total = 0
blob = os.urandom(64 << 20)
for d in range(1100):
    dd = os.path.join(root, f'd{d:04}', f'sub{d % 7}')
    os.makedirs(dd, exist_ok=True)
    for f in range(100):
        r = random.random()
        size = random.randint(0, 4096) if r < 0.5 else random.randint(4096, 40000) if r < 0.997 else random.randint(1 << 20, 6 << 20)
        off = random.randint(0, len(blob) - size)
        with open(os.path.join(dd, f'file{f:03}.bin'), 'wb') as fh:
            fh.write(blob[off:off + size])
        n += 1
        total += size
print(n, total)
