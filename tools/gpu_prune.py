#!/usr/bin/env python3
"""Keep one GPU architecture's kernels in a CUDA shared library, so it travels small.

usage: gpu_prune.py SRC DST ARCH     (ARCH: 90 for Hopper, the H100/H200)

Every cubin of another architecture in the .nv_fatbin section has its bytes zeroed in place:
the file keeps its layout and its headers, the CUDA runtime still picks the ARCH cubin, and the
zeros compress to nothing (onnxruntime-gpu 1.31's CUDA provider: 284 MB, 186 MB with zstd -19;
sm_90 only: 52 MB with xz -9). PTX entries are kept (none in that build). A GPU of another
architecture finds no kernel for itself: the output is for one machine's checks, never shipped.
"""
import struct
import subprocess
import sys

FATBIN_MAGIC = 0xBA55ED50


def fatbin_section(path):
    out = subprocess.check_output(["readelf", "-S", "-W", path]).decode()
    for line in out.splitlines():
        if ".nv_fatbin" in line:
            f = line.split("]")[1].split()
            return int(f[3], 16), int(f[4], 16)
    sys.exit(f"{path}: no .nv_fatbin section")


def main():
    src, dst, keep = sys.argv[1], sys.argv[2], int(sys.argv[3])
    start, size = fatbin_section(src)
    data = bytearray(open(src, "rb").read())
    p, end, zeroed, kept = start, start + size, 0, 0
    while p < end:
        magic, _ver, hsz, fsz = struct.unpack_from("<IHHQ", data, p)
        if magic != FATBIN_MAGIC:  # padding between containers
            p += 8
            continue
        q, fend = p + hsz, p + hsz + fsz
        while q < fend:
            kind, _ev, ehsz, psz = struct.unpack_from("<HHIQ", data, q)
            arch = struct.unpack_from("<I", data, q + 28)[0]
            if kind == 2 and arch != keep:  # 2: a cubin (1: PTX)
                data[q + ehsz:q + ehsz + psz] = bytes(psz)
                zeroed += psz
            else:
                kept += psz
            q += ehsz + psz
        p = fend
    with open(dst, "wb") as f:
        f.write(data)
    print(f"{dst}: kept {kept >> 20} MiB of sm_{keep} kernels, zeroed {zeroed >> 20} MiB")


if __name__ == "__main__":
    main()
